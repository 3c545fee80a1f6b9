// Audio for audio towers: reading sound files (WAV, and whatever else libsndfile reads: FLAC, OGG,
// AIFF, ...) as mono floats, linear-interpolation resampling, log-mel spectrograms (Hann window,
// FFTW, HTK mel filterbank) and an item id -> audio file table. Errors are DataErrors naming the file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "content/table.h"

struct fftwf_plan_s;  // FFTW's plan type, kept out of this header

namespace siamrec {

struct Audio {
  std::vector<float> samples;  // mono: the average of the file's channels, in [-1,1] for PCM
  int sample_rate = 0;
  int channels = 0;  // of the file
};
Audio read_wav(const std::string& path);

// Linear interpolation between neighbouring samples (output sample j sits at input position
// j * from / to); no anti-aliasing filter, so downsampling keeps content above the new Nyquist
// frequency as aliases. Output length round(n * to / from).
std::vector<float> resample_linear(const std::vector<float>& x, int from_rate, int to_rate);

struct MelOptions {
  int sample_rate = 16000;  // rate the features are computed at (files are resampled to it)
  int n_fft = 512;          // window and FFT length
  int hop = 256;
  int n_mels = 64;
  float fmin = 0, fmax = 0;  // filterbank range in Hz; fmax 0 = sample_rate / 2
  float log_eps = 1e-6f;     // features are log(log_eps + power)
  int frames = 0;            // > 0: pad (with silence, log(log_eps)) or crop to this many frames
};

// Log-mel spectrogram, matching torchaudio's MelSpectrogram defaults (center=True with reflect
// padding, periodic Hann window, power 2, HTK mel scale 2595*log10(1+f/700), triangular filters
// without area normalization), followed by log(eps + power). compute() is thread-safe.
class LogMel {
 public:
  explicit LogMel(const MelOptions& o);  // ConfigError naming the option when a value is bad
  ~LogMel();
  LogMel(const LogMel&) = delete;
  LogMel& operator=(const LogMel&) = delete;

  const MelOptions& options() const { return opt_; }
  int n_bins() const { return opt_.n_fft / 2 + 1; }
  int64_t n_frames(size_t n_samples) const;  // rows compute() returns for that many samples
  // [n_frames, n_mels] row-major.
  std::vector<float> compute(const std::vector<float>& samples) const;
  // read_wav, resample to options().sample_rate when needed, compute.
  std::vector<float> compute_file(const std::string& path) const;

  const std::vector<float>& filterbank() const { return fb_; }  // [n_mels, n_bins]
  // n_mels + 2 frequencies in Hz: band m rises from edge m, peaks at m + 1 and falls to m + 2.
  const std::vector<double>& band_edges_hz() const { return edges_; }

 private:
  MelOptions opt_;
  std::vector<float> window_, fb_;
  std::vector<double> edges_;
  std::vector<int> fb_lo_, fb_hi_;  // non-zero bin range of each filter
  fftwf_plan_s* plan_ = nullptr;
};

// Log-mel features of the items listed in a CSV (see FileTable); set MelOptions::frames for
// fixed-size features.
class AudioTable {
 public:
  AudioTable(const std::string& csv_path, const MelOptions& o, const FileTableFormat& f = {},
             const ReadOptions& r = {});
  const FileTable& files() const { return files_; }
  const LogMel& mel() const { return mel_; }
  size_t size() const { return files_.size(); }
  std::vector<float> load(size_t i) const;                    // errors name the CSV line and the file
  std::vector<float> load(const std::string& item_id) const;  // DataError when the id is not listed

 private:
  LogMel mel_;
  FileTable files_;
};

}  // namespace siamrec
