"""Generates tests/data/images (run once; the outputs are committed). Needs Pillow.

Valid images of every supported kind and colour mode, one EXIF-rotated JPEG, and broken files:
each format truncated, random bytes, an empty file, text named .png, a PNG with a bad CRC, and
PNG/BMP headers claiming 20000x20000 pixels.
"""
import io, os, random, struct, zlib
from PIL import Image

out = os.path.join(os.path.dirname(__file__), "images")
os.makedirs(out, exist_ok=True)

def halves(w=40, h=20):
    """Left half red, right half blue: orientation is visible in the pixels."""
    im = Image.new("RGB", (w, h), (255, 0, 0))
    im.paste((0, 0, 255), (w // 2, 0, w, h))
    return im

def save(name, im, **kw):
    im.save(os.path.join(out, name), **kw)

base = halves()
save("rgb.jpg", base, quality=95)
save("rgb.png", base)
save("rgb.bmp", base)
save("rgb.webp", base, lossless=True)
save("gray.png", base.convert("L"))
save("gray.jpg", base.convert("L"), quality=95)
rgba = base.convert("RGBA"); rgba.putalpha(128)
save("alpha.png", rgba)
save("cmyk.jpg", base.convert("CMYK"), quality=95)
save("gray16.png", base.convert("L").point(lambda v: v * 256, "I").convert("I;16"))
frames = [Image.new("RGB", (40, 20), (255, 0, 0)), Image.new("RGB", (40, 20), (0, 0, 255))]
frames[0].save(os.path.join(out, "anim.gif"), save_all=True, append_images=frames[1:], duration=100)
save("palette.png", base.convert("P"))
exif = Image.Exif(); exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
save("exif_rot90.jpg", base, quality=95, exif=exif)

bad = os.path.join(out, "bad")
os.makedirs(bad, exist_ok=True)
for name in ["rgb.jpg", "rgb.png", "rgb.bmp", "rgb.webp", "anim.gif"]:
    data = open(os.path.join(out, name), "rb").read()
    ext = name.split(".")[1]
    open(os.path.join(bad, f"truncated.{ext}"), "wb").write(data[: len(data) // 2])
random.seed(0)
open(os.path.join(bad, "random.jpg"), "wb").write(bytes(random.randrange(256) for _ in range(2000)))
open(os.path.join(bad, "empty.png"), "wb").write(b"")
open(os.path.join(bad, "text.png"), "wb").write(b"this is not an image\n")
png = bytearray(open(os.path.join(out, "rgb.png"), "rb").read())
png[29] ^= 0xFF  # inside IHDR: its CRC no longer matches
open(os.path.join(bad, "bad_crc.png"), "wb").write(bytes(png))

def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
huge = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b"")
open(os.path.join(bad, "huge_20000.png"), "wb").write(huge)
bmp = struct.pack("<2sIHHI", b"BM", 54, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, 20000, 20000, 1, 24, 0, 0, 2835, 2835, 0, 0)
open(os.path.join(bad, "huge_20000.bmp"), "wb").write(bmp)
