"""Writes tiny PyTorch checkpoints in both of torch.save's formats (run once; outputs committed).

torch itself is not needed: stand-in `torch` modules give the pickled records the same global
names torch uses (torch._utils._rebuild_tensor_v2, torch.FloatStorage, ...), and the file layout
follows torch/serialization.py: legacy = magic, protocol, sys info, state dict, storage keys,
then the raw storages; zip (ZIP_STORED) = archive/data.pkl + archive/data/<key>.
The state dict has a float tensor, a transposed (non-contiguous) view sharing its storage, an
int64 counter like BatchNorm's num_batches_tracked, a scalar, and an nn.Parameter wrapper.
"""
import collections, io, os, pickle, struct, sys, types, zipfile

torch = types.ModuleType("torch"); utils = types.ModuleType("torch._utils")
sys.modules["torch"] = torch; sys.modules["torch._utils"] = utils
torch._utils = utils

class Storage:
    def __init__(self, key, values, fmt):
        self.key, self.values, self.fmt = key, values, fmt
    def raw(self):
        return struct.pack("<" + self.fmt * len(self.values), *self.values)
for name in ["FloatStorage", "LongStorage"]:
    cls = type(name, (), {}); cls.__module__ = "torch"; setattr(torch, name, cls)

def _rebuild_tensor_v2(*a): pass
def _rebuild_parameter(*a): pass
for f in (_rebuild_tensor_v2, _rebuild_parameter):
    f.__module__ = "torch._utils"; setattr(utils, f.__name__, f)

class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())
    def __reduce_ex__(self, proto):
        return (utils._rebuild_tensor_v2, self.args)
class Parameter:
    def __init__(self, t): self.t = t
    def __reduce_ex__(self, proto):
        return (utils._rebuild_parameter, (self.t, True, collections.OrderedDict()))

w = Storage("0", [float(i) for i in range(6)], "f")      # 2x3, row-major
n = Storage("1", [1234], "q")
b = Storage("2", [0.5, -1.5, 2.25], "f")
state = collections.OrderedDict([
    ("layer.weight", Tensor(w, 0, [2, 3], [3, 1])),
    ("layer.weight_t", Tensor(w, 0, [3, 2], [1, 3])),      # transposed view of the same storage
    ("layer.bias", Parameter(Tensor(b, 0, [3], [1]))),
    ("bn.num_batches_tracked", Tensor(n, 0, [], [])),
    ("tail", Tensor(b, 1, [2], [1])),                      # storage offset 1
])
storages = {"0": w, "1": n, "2": b}

def dump_state(f, root):
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                cls = getattr(torch, "FloatStorage" if obj.fmt == "f" else "LongStorage")
                return ("storage", cls, obj.key, "cpu", len(obj.values))
            return None
    P(f, protocol=2).dump(root)

out = os.path.join(os.path.dirname(__file__), "checkpoints")
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "tiny_legacy.pth"), "wb") as f:
    pickle.dump(0x1950a86a20f9469cfc6c, f, protocol=2)
    pickle.dump(1001, f, protocol=2)
    pickle.dump({"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}, f, protocol=2)
    dump_state(f, {"state_dict": state, "epoch": 3})   # nested, as training scripts save
    pickle.dump(sorted(storages), f, protocol=2)
    for k in sorted(storages):
        s = storages[k]
        f.write(struct.pack("<q", len(s.values))); f.write(s.raw())
buf = io.BytesIO(); dump_state(buf, state)
with zipfile.ZipFile(os.path.join(out, "tiny_zip.pth"), "w", zipfile.ZIP_STORED) as z:
    z.writestr("archive/data.pkl", buf.getvalue())
    for k, s in storages.items():
        z.writestr(f"archive/data/{k}", s.raw())
    z.writestr("archive/version", "3\n")
