// Image and spectrogram augmentation shared by the CNN towers (src/towers/cnn.cc).
#pragma once
#include <ATen/core/Tensor.h>

namespace siamrec {

// Random crop after zero padding by p, per item of the batch x (B x C x H x W): images crop at a
// random (dy, dx) in [0, 2p] and are mirrored horizontally with probability 1/2; spectrograms
// (image false) shift in time (dy) only. Draws torch::randint {B, 2} then torch::rand {B} from the
// global generator. The result is B x C x H x W in channels-last memory order.
at::Tensor crop_flip_augment(const at::Tensor& x, bool image, int64_t p);

}  // namespace siamrec
