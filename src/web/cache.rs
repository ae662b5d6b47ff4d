//! The page's feature cache, shared by the GPU and CPU trainers: images by id waiting for the
//! frozen trunk, and the trunk's output for each, kept as f16 (half the memory of f32; 2000
//! MobileNetV2 images at depth 3 take 31 MB).
use crate::error::{Error, Result};
use crate::model::f16;
use std::collections::{HashMap, HashSet};

pub(super) struct FeatureCache {
    /// Feature values per image.
    pub per: usize,
    /// Bumped by `reset`: results computed for an older split are dropped.
    epoch: u64,
    /// Preprocessed inputs (224×224×3) waiting for the trunk.
    pending: Vec<(u32, Vec<f32>)>,
    live: HashSet<u32>,
    features: HashMap<u32, Vec<u16>>,
}

pub(super) fn to_f16(v: &[f32]) -> Vec<u16> {
    v.iter().map(|&x| f16::from_f32(x)).collect()
}

pub(super) fn to_f32(v: &[u16]) -> Vec<f32> {
    v.iter().map(|&h| f16::to_f32(h)).collect()
}

impl FeatureCache {
    pub fn new(per: usize) -> FeatureCache {
        FeatureCache { per, epoch: 0, pending: Vec::new(), live: HashSet::new(), features: HashMap::new() }
    }

    /// Forget every image (a new split): the page adds them again.
    pub fn reset(&mut self, per: usize) {
        *self = FeatureCache { epoch: self.epoch + 1, ..FeatureCache::new(per) };
    }

    pub fn queue(&mut self, id: u32, x: Vec<f32>) {
        self.pending.retain(|(p, _)| *p != id);
        self.features.remove(&id);
        self.live.insert(id);
        self.pending.push((id, x));
    }

    pub fn remove(&mut self, id: u32) {
        self.live.remove(&id);
        self.features.remove(&id);
        self.pending.retain(|(p, _)| *p != id);
    }

    /// Up to `k` queued images and the epoch to hand back to `store`.
    pub fn take(&mut self, k: usize) -> (u64, Vec<(u32, Vec<f32>)>) {
        let k = k.min(self.pending.len());
        (self.epoch, self.pending.drain(..k).collect())
    }

    /// Features `z` (`per` values each) of images `ids`, unless the split changed meanwhile or
    /// an image was removed.
    pub fn store(&mut self, epoch: u64, ids: &[u32], z: &[f32]) {
        if epoch != self.epoch {
            return;
        }
        for (k, id) in ids.iter().enumerate() {
            if self.live.contains(id) {
                self.features.insert(*id, to_f16(&z[k * self.per..(k + 1) * self.per]));
            }
        }
    }

    /// The f16 features of `ids`, in order.
    pub fn gather(&self, ids: &[u32]) -> Result<Vec<u16>> {
        let mut z = Vec::with_capacity(ids.len() * self.per);
        for id in ids {
            z.extend_from_slice(self.features.get(id).ok_or_else(|| Error::InvalidArgument(format!("image {id} was not added (or could not be read)")))?);
        }
        Ok(z)
    }

    pub fn len(&self) -> usize {
        self.features.len()
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    pub fn bytes(&self) -> usize {
        self.features.len() * self.per * 2
    }
}

/// The photo half of the page's API, identical on both trainers: queue a photo (RGBA pixels from
/// a canvas, or a file's bytes decoded exactly as natively), remove one, and the cache's counts.
/// The type needs `state: RefCell<_>` with a `cache: FeatureCache` field and `fn arch(&self)`.
macro_rules! photo_api {
    ($t:ty) => {
        #[wasm_bindgen]
        impl $t {
            /// Queue a photo given as RGBA pixels under `id`; its features are computed by
            /// `computeFeatures` or `train`. `name` is for error messages.
            #[wasm_bindgen(js_name = addImage)]
            pub fn add_image(&self, id: u32, rgba: &[u8], width: u32, height: u32, name: &str) -> std::result::Result<(), JsError> {
                let x = crate::model::preprocess::preprocess_rgba(rgba, width, height, name, self.arch()).map_err(super::js_err)?;
                self.state.borrow_mut().cache.queue(id, x);
                Ok(())
            }

            /// Queue an image file's bytes.
            #[wasm_bindgen(js_name = addImageFile)]
            pub fn add_image_file(&self, id: u32, bytes: &[u8], name: &str) -> std::result::Result<(), JsError> {
                let x = crate::model::preprocess::preprocess(bytes, name, self.arch()).map_err(super::js_err)?;
                self.state.borrow_mut().cache.queue(id, x);
                Ok(())
            }

            #[wasm_bindgen(js_name = removeImage)]
            pub fn remove_image(&self, id: u32) {
                self.state.borrow_mut().cache.remove(id);
            }

            /// Photos with cached features.
            #[wasm_bindgen(getter, js_name = featureCount)]
            pub fn feature_count(&self) -> usize {
                self.state.borrow().cache.len()
            }

            /// Photos waiting for the network.
            #[wasm_bindgen(getter, js_name = pendingCount)]
            pub fn pending_count(&self) -> usize {
                self.state.borrow().cache.pending()
            }

            /// Bytes the feature cache holds (f16).
            #[wasm_bindgen(getter, js_name = featureBytes)]
            pub fn feature_bytes(&self) -> usize {
                self.state.borrow().cache.bytes()
            }
        }
    };
}
pub(super) use photo_api;

/// The photos a model was trained on, in training order, with their f16 features: what
/// explaining, forgetting and the exported file list need. Empty after an import.
#[derive(Default)]
pub(super) struct TrainingSet {
    pub ids: Vec<u32>,
    pub labels: Vec<u32>,
    pub names: Vec<String>,
    /// Features of the photos in `ids` order, `per` values each.
    pub z: Vec<u16>,
    per: usize,
}

impl TrainingSet {
    pub fn new(ids: Vec<u32>, labels: Vec<u32>, names: Vec<String>, z: Vec<u16>, per: usize) -> TrainingSet {
        TrainingSet { ids, labels, names, z, per }
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn features(&self) -> Vec<f32> {
        to_f32(&self.z)
    }

    /// Where photo `id` is in the training order.
    pub fn index_of(&self, id: u32) -> Result<usize> {
        self.ids.iter().position(|&i| i == id).ok_or_else(|| Error::InvalidArgument(format!("image {id} is not in the model's training set")))
    }

    /// The set without the photo at `index`, refused when it would leave a single class.
    pub fn without(&self, index: usize) -> Result<TrainingSet> {
        let keep: Vec<usize> = (0..self.ids.len()).filter(|&i| i != index).collect();
        let labels: Vec<u32> = keep.iter().map(|&i| self.labels[i]).collect();
        crate::lqf::train::require_two_classes(&labels).map_err(|_| Error::InvalidArgument("forgetting it would leave fewer than 2 classes".into()))?;
        Ok(TrainingSet {
            ids: keep.iter().map(|&i| self.ids[i]).collect(),
            labels,
            names: keep.iter().map(|&i| self.names[i].clone()).collect(),
            z: keep.iter().flat_map(|&i| self.z[i * self.per..(i + 1) * self.per].iter().copied()).collect(),
            per: self.per,
        })
    }

    /// (file name, class index) per photo, as model files list them.
    pub fn files(&self) -> Vec<(String, u32)> {
        self.names.iter().cloned().zip(self.labels.iter().copied()).collect()
    }
}
