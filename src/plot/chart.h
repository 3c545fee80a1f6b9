// Charts for the HTML report, drawn with plot/svg.h: line, point (scatter), grouped bar and box
// charts on linear axes, with axis labels, ticks, legend, whiskers, reference lines and markers.
// One style for every chart; colours from the Okabe-Ito palette (distinguishable with the common
// colour-vision deficiencies). Elements carry classes the tests count: "bar", "whisker", "point",
// "series-line", "box", "marker".
#pragma once
#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace siamrec::plot {

// Okabe & Ito (2008): black first for text; series use kSeriesColors in order.
extern const std::array<const char*, 8> kSeriesColors;
const char* series_color(int k);  // wraps around

struct Series {
  enum class Kind { Line, Points, Bars, Box };
  std::string name;
  Kind kind = Kind::Line;
  std::vector<double> x, y;       // Line/Points: coordinates; Bars: y per category (x unused)
  std::vector<double> lo, hi;     // optional whiskers per value (Bars, Points)
  std::vector<std::string> tips;  // optional tooltip per value
  // Box: per category {low whisker, first quartile, median, third quartile, high whisker}; mean dot in y.
  std::vector<std::array<double, 5>> box;
  std::vector<int> point_colors;  // Points: a palette index per point (else the series colour)
  int color = -1;                 // palette index; -1 = the series' position
  bool dashed = false;
  double radius = 3, opacity = 1, width = 2;
};

struct Figure {
  std::string title, xlabel, ylabel;
  double width = 600, height = 330;
  std::vector<std::string> categories;  // Bars / Box: one slot per category along x
  std::vector<Series> series;
  std::optional<double> xmin, xmax, ymin, ymax;
  bool diagonal = false;                                  // the y = x reference line
  std::vector<std::pair<double, std::string>> vlines;     // vertical markers (x, label)
  std::vector<std::pair<std::string, int>> legend_extra;  // extra legend entries (label, palette index)
  bool legend = true;
  std::string note;  // small text under the x axis label
};

// About `target` round tick values covering [lo, hi] (steps 1, 2, 2.5, 5 x 10^k).
std::vector<double> nice_ticks(double lo, double hi, int target = 5);
// A tick label with as many decimals as the step needs (1e-3 .. 1e6 plainly, else scientific).
std::string tick_label(double v, double step);
// The figure as an <svg> element. Series without finite values draw nothing (and are still named
// in the legend); an empty figure draws its frame and the text "no data".
std::string render(const Figure& f);

}  // namespace siamrec::plot
