#include "plot/chart.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "plot/svg.h"

namespace siamrec::plot {

const std::array<const char*, 8> kSeriesColors = {"#0072B2", "#E69F00", "#009E73", "#CC79A7",
                                                  "#56B4E9", "#D55E00", "#F0E442", "#000000"};
const char* series_color(int k) { return kSeriesColors[static_cast<size_t>(((k % 8) + 8) % 8)]; }

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {};
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) return {lo};
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag * 10;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (raw <= m * mag * 1.0000001) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  // Multiples of the step computed one by one (no accumulated rounding), rounded to its decimals.
  const double k0 = std::ceil(lo / step - 1e-9);
  const double scale = std::pow(10.0, std::max(0.0, 1 - std::floor(std::log10(step))));
  for (double k = k0; k * step <= hi + step * 1e-9 && t.size() < 100; k += 1) {
    const double v = std::round(k * step * scale) / scale;
    t.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  }
  return t;
}

std::string tick_label(double v, double step) {
  const double a = std::abs(v);
  if (a != 0 && (a >= 1e6 || a < 1e-3)) return fmt::format("{:.2g}", v);
  int dec = 0;
  while (dec < 6 && std::abs(step * std::pow(10.0, dec) - std::round(step * std::pow(10.0, dec))) > 1e-6) ++dec;
  if (a >= 1e4 && dec == 0) {  // thousands separated for readability
    std::string s = fmt::format("{:.0f}", std::abs(v)), o;
    for (size_t k = 0; k < s.size(); ++k) {
      if (k && (s.size() - k) % 3 == 0) o += ',';
      o += s[k];
    }
    return (v < 0 ? "-" : "") + o;
  }
  return fmt::format("{:.{}f}", v, dec);
}

namespace {

// Palette index k, or grey for k < 0 ("other").
const char* color_or_grey(int k) { return k < 0 ? "#aaaaaa" : series_color(k); }

struct Range {
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  bool empty() const { return !(lo <= hi); }
};

// Fixes the axis range: given bounds win; otherwise padded, widened when flat, snapped to ticks.
void settle(Range& r, std::optional<double> fmin, std::optional<double> fmax, bool snap, std::vector<double>& ticks) {
  if (r.empty()) r.lo = 0, r.hi = 1;
  const bool nonneg = r.lo >= 0;  // padding and ticks do not invent negative values
  if (fmin) r.lo = *fmin;
  if (fmax) r.hi = *fmax;
  if (r.hi <= r.lo) {
    const double d = r.lo == 0 ? 1.0 : std::abs(r.lo) * 0.5;
    if (!fmin) r.lo -= d;
    if (!fmax || r.hi <= r.lo) r.hi = r.lo + 2 * d;
  }
  if (!fmin || !fmax) {
    const double pad = (r.hi - r.lo) * 0.04;
    if (!fmin) r.lo = nonneg ? std::max(0.0, r.lo - pad) : r.lo - pad;
    if (!fmax) r.hi += pad;
  }
  ticks = nice_ticks(r.lo, r.hi, 5);
  if (snap && ticks.size() >= 2) {
    const double step = ticks[1] - ticks[0];
    if (!fmin && ticks.front() > r.lo) ticks.insert(ticks.begin(), ticks.front() - step), r.lo = ticks.front();
    if (!fmax && ticks.back() < r.hi) ticks.push_back(ticks.back() + step), r.hi = ticks.back();
  }
}

std::string truncate(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  size_t cut = n - 1;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // keep UTF-8 whole
  return s.substr(0, cut) + "…";
}

}  // namespace

std::string render(const Figure& f) {
  using K = Series::Kind;
  const bool categorical = !f.categories.empty();
  size_t legend_rows = f.legend_extra.size();
  if (f.legend)
    for (auto& se : f.series) legend_rows += !se.name.empty();
  if (!f.legend) legend_rows = 0;
  const double L = 66, T = f.title.empty() ? 12 : 32, R = legend_rows ? 176 : 18, B = 48 + (f.note.empty() ? 0 : 16);
  const double W = f.width, H = std::max(f.height, T + B + 14.0 * legend_rows + 20);
  const double pw = W - L - R, ph = H - T - B;
  Svg s(W, H, f.title.empty() ? f.ylabel + " vs " + f.xlabel : f.title);
  s.rect(0, 0, W, H, "#ffffff");
  if (!f.title.empty()) s.text(L, 20, f.title, Svg::Anchor::Start, 14, "title", 0, true);

  Range xr, yr;
  bool any = false;
  for (auto& se : f.series) {
    for (size_t k = 0; k < se.y.size(); ++k) {
      yr.add(se.y[k]);
      any = any || std::isfinite(se.y[k]);
      if (!categorical && k < se.x.size()) xr.add(se.x[k]);
    }
    for (double v : se.lo) yr.add(v);
    for (double v : se.hi) yr.add(v);
    for (auto& b : se.box) {
      for (double v : b) yr.add(v);
      any = any || std::isfinite(b[2]);
    }
  }
  bool bars = false;
  for (auto& se : f.series) bars = bars || se.kind == K::Bars;
  std::optional<double> ymin = f.ymin;
  if (bars && !ymin && !yr.empty() && yr.lo >= 0) ymin = 0.0;
  std::vector<double> xt, yt;
  settle(yr, ymin, f.ymax, true, yt);
  if (!categorical) settle(xr, f.xmin, f.xmax, false, xt);
  auto X = [&](double v) { return L + (v - xr.lo) / (xr.hi - xr.lo) * pw; };
  auto Y = [&](double v) { return T + ph - (v - yr.lo) / (yr.hi - yr.lo) * ph; };
  const double slot = categorical ? pw / f.categories.size() : 0;
  auto slot_x = [&](size_t c) { return L + (c + 0.5) * slot; };

  // Grid, ticks and axes.
  const double ystep = yt.size() >= 2 ? yt[1] - yt[0] : 1;
  for (double v : yt) {
    s.line(L, Y(v), L + pw, Y(v), "#e6e6e6", 1, "grid");
    s.text(L - 6, Y(v) + 4, tick_label(v, ystep), Svg::Anchor::End, 11, "tick");
  }
  if (categorical) {
    const size_t maxc = static_cast<size_t>(std::max(4.0, slot / 7));
    for (size_t c = 0; c < f.categories.size(); ++c)
      s.text(slot_x(c), T + ph + 16, truncate(f.categories[c], maxc), Svg::Anchor::Middle, 11, "tick");
  } else {
    const double xstep = xt.size() >= 2 ? xt[1] - xt[0] : 1;
    for (double v : xt) {
      s.line(X(v), T + ph, X(v), T + ph + 4, "#444444", 1);
      s.text(X(v), T + ph + 16, tick_label(v, xstep), Svg::Anchor::Middle, 11, "tick");
    }
  }
  s.line(L, T + ph, L + pw, T + ph, "#444444", 1, "axis");
  s.line(L, T, L, T + ph, "#444444", 1, "axis");
  s.text(L + pw / 2, T + ph + 34, f.xlabel, Svg::Anchor::Middle, 12, "axis-label");
  s.text(16, T + ph / 2, f.ylabel, Svg::Anchor::Middle, 12, "axis-label", -90);
  if (!f.note.empty()) s.text(L, T + ph + 48, f.note, Svg::Anchor::Start, 10, "note");
  if (!any) s.text(L + pw / 2, T + ph / 2, "no data", Svg::Anchor::Middle, 13, "empty");

  if (f.diagonal && !categorical) {
    const double a = std::max(xr.lo, yr.lo), b = std::min(xr.hi, yr.hi);
    if (b > a) s.line(X(a), Y(a), X(b), Y(b), "#888888", 1, "diagonal", true);
  }
  for (auto& [x, label] : f.vlines) {
    if (categorical || x < xr.lo || x > xr.hi) continue;
    s.line(X(x), T, X(x), T + ph, "#555555", 1, "marker", true);
    s.text(X(x) + 3, T + 11, label, Svg::Anchor::Start, 10, "marker-label");
  }

  // Series.
  size_t nbars = 0, nbox = 0;
  for (auto& se : f.series) nbars += se.kind == K::Bars, nbox += se.kind == K::Box;
  size_t bar_k = 0, box_k = 0;
  for (size_t si = 0; si < f.series.size(); ++si) {
    const Series& se = f.series[si];
    const char* col = series_color(se.color >= 0 ? se.color : static_cast<int>(si));
    auto tip = [&](size_t k, const std::string& dflt) { return k < se.tips.size() ? se.tips[k] : dflt; };
    auto whisker = [&](double x, size_t k, double cap) {
      if (k >= se.lo.size() || k >= se.hi.size()) return;
      if (!std::isfinite(se.lo[k]) || !std::isfinite(se.hi[k])) return;
      s.line(x, Y(se.lo[k]), x, Y(se.hi[k]), "#222222", 1.2, "whisker");
      s.line(x - cap, Y(se.lo[k]), x + cap, Y(se.lo[k]), "#222222", 1.2);
      s.line(x - cap, Y(se.hi[k]), x + cap, Y(se.hi[k]), "#222222", 1.2);
    };
    if (se.kind == K::Bars && categorical) {
      const double gw = slot * 0.8, bw = gw / std::max<size_t>(1, nbars);
      for (size_t c = 0; c < f.categories.size() && c < se.y.size(); ++c) {
        if (!std::isfinite(se.y[c])) continue;
        const double x0 = slot_x(c) - gw / 2 + bar_k * bw;
        const double base = Y(std::max(yr.lo, 0.0));
        s.rect(x0 + 1, std::min(base, Y(se.y[c])), bw - 2, std::abs(base - Y(se.y[c])), col, "bar",
               tip(c, fmt::format("{} · {}: {:.4g}", se.name, f.categories[c], se.y[c])));
        whisker(x0 + bw / 2, c, std::min(5.0, bw / 4));
      }
      ++bar_k;
    } else if (se.kind == K::Box && categorical) {
      const double gw = slot * 0.7, bw = gw / std::max<size_t>(1, nbox);
      for (size_t c = 0; c < f.categories.size() && c < se.box.size(); ++c) {
        const auto& b = se.box[c];
        if (!std::isfinite(b[2])) continue;
        const double x0 = slot_x(c) - gw / 2 + box_k * bw, xc = x0 + bw / 2;
        s.line(xc, Y(b[0]), xc, Y(b[1]), "#222222", 1.2, "whisker");
        s.line(xc, Y(b[3]), xc, Y(b[4]), "#222222", 1.2, "whisker");
        s.line(xc - bw / 5, Y(b[0]), xc + bw / 5, Y(b[0]), "#222222", 1.2);
        s.line(xc - bw / 5, Y(b[4]), xc + bw / 5, Y(b[4]), "#222222", 1.2);
        s.rect(x0 + bw * 0.15, Y(b[3]), bw * 0.7, Y(b[1]) - Y(b[3]), col, "box",
               tip(c, fmt::format("{}: median {:.4g}, quartiles {:.4g}-{:.4g}", f.categories[c], b[2], b[1], b[3])),
               0.55);
        s.line(x0 + bw * 0.15, Y(b[2]), x0 + bw * 0.85, Y(b[2]), "#111111", 2, "median");
        if (c < se.y.size()) s.circle(xc, Y(se.y[c]), 3.5, "#ffffff", "mean");
      }
      ++box_k;
    } else if (se.kind == K::Line) {
      std::vector<std::pair<double, double>> pts;
      for (size_t k = 0; k < se.y.size() && k < se.x.size(); ++k)
        if (std::isfinite(se.y[k]) && std::isfinite(se.x[k])) pts.emplace_back(X(se.x[k]), Y(se.y[k]));
      s.polyline(pts, col, se.width, "series-line", se.dashed, se.name);
      if (pts.size() <= 30)  // short series (metrics by K, a few epochs): show where the values are
        for (auto& [px, py] : pts) s.circle(px, py, 3, col, "vertex");
    } else if (se.kind == K::Points) {
      for (size_t k = 0; k < se.y.size() && k < se.x.size(); ++k) {
        if (!std::isfinite(se.y[k]) || !std::isfinite(se.x[k])) continue;
        whisker(X(se.x[k]), k, 4);
        const char* pc = k < se.point_colors.size() ? color_or_grey(se.point_colors[k]) : col;
        s.circle(X(se.x[k]), Y(se.y[k]), se.radius, pc, "point",
                 tip(k, fmt::format("{}: ({:.4g}, {:.4g})", se.name, se.x[k], se.y[k])), se.opacity);
      }
    }
  }

  // Legend.
  if (legend_rows) {
    double ly = T + 6;
    const double lx = L + pw + 14;
    auto entry = [&](const std::string& name, const char* col, bool line, bool dashed) {
      if (line)
        s.line(lx, ly + 5, lx + 18, ly + 5, col, 3, "legend-swatch", dashed);
      else
        s.rect(lx + 3, ly, 11, 11, col, "legend-swatch");
      s.text(lx + 24, ly + 10, truncate(name, 24), Svg::Anchor::Start, 11, "legend");
      ly += 16;
    };
    for (size_t si = 0; si < f.series.size(); ++si) {
      const Series& se = f.series[si];
      if (se.name.empty()) continue;
      entry(se.name, series_color(se.color >= 0 ? se.color : static_cast<int>(si)), se.kind == K::Line, se.dashed);
    }
    for (auto& [name, c] : f.legend_extra) entry(name, color_or_grey(c), false, false);
  }
  return s.str();
}

}  // namespace siamrec::plot
