#include "content/audio.h"

#include <fftw3.h>
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>

#include "util/error.h"
#include "util/io.h"

namespace siamrec {
namespace {

// FFTW's planner (plan creation and destruction) is not thread-safe; execution is.
std::mutex& fftw_planner_mutex() {
  static std::mutex m;
  return m;
}

double hz_to_mel(double f) { return 2595.0 * std::log10(1.0 + f / 700.0); }
double mel_to_hz(double m) { return 700.0 * (std::pow(10.0, m / 2595.0) - 1.0); }

struct FftwFree {
  void operator()(void* p) const { fftwf_free(p); }
};

}  // namespace

// ---- reading ------------------------------------------------------------------------------------

Audio read_wav(const std::string& path) {
  if (!file_exists(path)) throw DataError(fmt::format("audio file '{}' does not exist", path));
  SF_INFO info{};
  std::unique_ptr<SNDFILE, int (*)(SNDFILE*)> f(sf_open(path.c_str(), SFM_READ, &info), sf_close);
  if (!f) throw DataError(fmt::format("cannot read audio file '{}': {}", path, sf_strerror(nullptr)));
  if (info.channels <= 0 || info.channels > 1024 || info.samplerate <= 0)
    throw DataError(fmt::format("audio file '{}' has an invalid header ({} channels, {} Hz)", path, info.channels,
                                info.samplerate));
  Audio a;
  a.sample_rate = info.samplerate;
  a.channels = info.channels;
  // The header's frame count is only a hint: read until the end.
  if (info.frames > 0) a.samples.reserve(static_cast<size_t>(std::min<sf_count_t>(info.frames, sf_count_t{1} << 26)));
  const int c = info.channels;
  constexpr sf_count_t kChunk = 4096;
  std::vector<float> buf(static_cast<size_t>(kChunk) * c);
  while (true) {
    sf_count_t got = sf_readf_float(f.get(), buf.data(), kChunk);
    if (got <= 0) break;
    for (sf_count_t t = 0; t < got; ++t) {
      float s = 0;
      for (int k = 0; k < c; ++k) s += buf[t * c + k];
      a.samples.push_back(c == 1 ? s : s / static_cast<float>(c));
    }
  }
  if (sf_error(f.get()) != SF_ERR_NO_ERROR)
    throw DataError(fmt::format("cannot read audio file '{}': {}", path, sf_strerror(f.get())));
  for (size_t i = 0; i < a.samples.size(); ++i)
    if (!std::isfinite(a.samples[i]))
      throw DataError(fmt::format("audio file '{}' has a non-finite sample at frame {}", path, i));
  return a;
}

std::vector<float> resample_linear(const std::vector<float>& x, int from_rate, int to_rate) {
  if (from_rate <= 0 || to_rate <= 0) fail("resample_linear: rates must be > 0 (got {} -> {})", from_rate, to_rate);
  if (from_rate == to_rate || x.empty()) return x;
  const int64_t n = static_cast<int64_t>(x.size());
  const int64_t m = std::llround(static_cast<double>(n) * to_rate / from_rate);
  std::vector<float> y(static_cast<size_t>(m));
  for (int64_t j = 0; j < m; ++j) {
    const int64_t num = j * from_rate;  // exact position j * from / to = i + r / to
    const int64_t i = num / to_rate, r = num % to_rate;
    if (i >= n - 1) {
      y[j] = x[n - 1];
      continue;
    }
    const float t = static_cast<float>(r) / static_cast<float>(to_rate);
    y[j] = x[i] + (x[i + 1] - x[i]) * t;
  }
  return y;
}

// ---- log-mel ------------------------------------------------------------------------------------

LogMel::LogMel(const MelOptions& o) : opt_(o) {
  if (o.sample_rate <= 0 || o.sample_rate > 1000000)
    throw ConfigError(fmt::format("mel sample_rate must be 1..1000000 Hz (got {})", o.sample_rate));
  if (o.n_fft < 2 || o.n_fft > (1 << 16))
    throw ConfigError(fmt::format("mel n_fft must be 2..65536 (got {})", o.n_fft));
  if (o.hop < 1) throw ConfigError(fmt::format("mel hop must be >= 1 (got {})", o.hop));
  if (o.n_mels < 1 || o.n_mels > 4096) throw ConfigError(fmt::format("mel n_mels must be 1..4096 (got {})", o.n_mels));
  const double nyquist = o.sample_rate / 2.0;
  const double fmax = o.fmax == 0 ? nyquist : o.fmax;
  if (!(o.fmin >= 0) || !(fmax > o.fmin) || fmax > nyquist)
    throw ConfigError(
        fmt::format("mel frequency range must satisfy 0 <= fmin < fmax <= sample_rate/2 = {} "
                    "(got fmin {}, fmax {})",
                    nyquist, o.fmin, o.fmax));
  if (!(o.log_eps > 0) || !std::isfinite(o.log_eps))
    throw ConfigError(fmt::format("mel log_eps must be > 0 (got {})", o.log_eps));
  if (o.frames < 0) throw ConfigError(fmt::format("mel frames must be >= 0 (got {})", o.frames));

  const int n = o.n_fft, nb = n_bins();
  window_.resize(n);  // periodic Hann
  for (int k = 0; k < n; ++k) window_[k] = static_cast<float>(0.5 - 0.5 * std::cos(2.0 * M_PI * k / n));

  const double mlo = hz_to_mel(o.fmin), mhi = hz_to_mel(fmax);
  edges_.resize(o.n_mels + 2);
  for (int i = 0; i < o.n_mels + 2; ++i) edges_[i] = mel_to_hz(mlo + (mhi - mlo) * i / (o.n_mels + 1));
  fb_.assign(static_cast<size_t>(o.n_mels) * nb, 0.f);
  fb_lo_.assign(o.n_mels, 0);
  fb_hi_.assign(o.n_mels, 0);
  for (int m = 0; m < o.n_mels; ++m) {
    const double l = edges_[m], c = edges_[m + 1], r = edges_[m + 2];
    int lo = nb, hi = 0;
    for (int k = 0; k < nb; ++k) {
      const double f = static_cast<double>(k) * o.sample_rate / n;
      const double w = std::max(0.0, std::min((f - l) / (c - l), (r - f) / (r - c)));
      if (w > 0) {
        fb_[static_cast<size_t>(m) * nb + k] = static_cast<float>(w);
        lo = std::min(lo, k);
        hi = k + 1;
      }
    }
    fb_lo_[m] = std::min(lo, hi);
    fb_hi_[m] = hi;
  }

  // One plan, executed later on per-call arrays (fftwf_malloc gives them the planning alignment).
  std::unique_ptr<float, FftwFree> in(fftwf_alloc_real(n));
  std::unique_ptr<fftwf_complex, FftwFree> out(fftwf_alloc_complex(nb));
  if (!in || !out) fail("LogMel: out of memory for an FFT of size {}", n);
  std::lock_guard<std::mutex> lock(fftw_planner_mutex());
  plan_ = fftwf_plan_dft_r2c_1d(n, in.get(), out.get(), FFTW_ESTIMATE);
  if (!plan_) fail("LogMel: FFTW could not plan a real FFT of size {}", n);
}

LogMel::~LogMel() {
  if (!plan_) return;
  std::lock_guard<std::mutex> lock(fftw_planner_mutex());
  fftwf_destroy_plan(plan_);
}

int64_t LogMel::n_frames(size_t n_samples) const {
  return opt_.frames > 0 ? opt_.frames : 1 + static_cast<int64_t>(n_samples / opt_.hop);
}

std::vector<float> LogMel::compute(const std::vector<float>& samples) const {
  const int n = opt_.n_fft, nb = n_bins(), nm = opt_.n_mels, pad = n / 2;
  const int64_t len = static_cast<int64_t>(samples.size());
  const int64_t natural = 1 + len / opt_.hop, rows = n_frames(samples.size());
  const int64_t computed = std::min(natural, rows);
  const float silence = std::log(opt_.log_eps);
  std::vector<float> out(static_cast<size_t>(rows) * nm, silence);

  std::unique_ptr<float, FftwFree> in(fftwf_alloc_real(n));
  std::unique_ptr<fftwf_complex, FftwFree> spec(fftwf_alloc_complex(nb));
  if (!in || !spec) fail("LogMel: out of memory for an FFT of size {}", n);
  std::vector<float> power(nb);
  // Centre padding by reflection (x[-1] = x[1]); positions still outside the signal are zero.
  auto at = [&](int64_t i) -> float {
    if (i < 0) i = -i;
    if (i >= len) i = 2 * (len - 1) - i;
    return i >= 0 && i < len ? samples[i] : 0.f;
  };
  for (int64_t t = 0; t < computed; ++t) {
    const int64_t start = t * opt_.hop - pad;
    float* x = in.get();
    if (start >= 0 && start + n <= len) {
      for (int k = 0; k < n; ++k) x[k] = samples[start + k] * window_[k];
    } else {
      for (int k = 0; k < n; ++k) x[k] = at(start + k) * window_[k];
    }
    fftwf_execute_dft_r2c(plan_, x, spec.get());
    for (int k = 0; k < nb; ++k) power[k] = spec.get()[k][0] * spec.get()[k][0] + spec.get()[k][1] * spec.get()[k][1];
    float* row = out.data() + t * nm;
    for (int m = 0; m < nm; ++m) {
      const float* w = fb_.data() + static_cast<size_t>(m) * nb;
      double e = 0;
      for (int k = fb_lo_[m]; k < fb_hi_[m]; ++k) e += static_cast<double>(w[k]) * power[k];
      row[m] = static_cast<float>(std::log(opt_.log_eps + e));
    }
  }
  return out;
}

std::vector<float> LogMel::compute_file(const std::string& path) const {
  Audio a = read_wav(path);
  if (a.sample_rate != opt_.sample_rate) a.samples = resample_linear(a.samples, a.sample_rate, opt_.sample_rate);
  return compute(a.samples);
}

// ---- tables -------------------------------------------------------------------------------------

AudioTable::AudioTable(const std::string& csv_path, const MelOptions& o, const FileTableFormat& f, const ReadOptions& r)
    : mel_(o), files_(FileTable::read(csv_path, f, r)) {}

std::vector<float> AudioTable::load(size_t i) const {
  try {
    return mel_.compute_file(files_.path(i));
  } catch (const DataError& e) {
    throw DataError(fmt::format("{}: {}", files_.where(i), e.what()));
  }
}

std::vector<float> AudioTable::load(const std::string& item_id) const { return load(files_.at(item_id)); }

}  // namespace siamrec
