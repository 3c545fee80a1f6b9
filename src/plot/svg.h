// A small SVG writer for inline HTML figures (siamrec report): shapes, text and tooltips
// (<title>), with numbers rounded to 0.1 px and every text escaped. No xmlns attribute: the SVG
// is meant to sit inside an HTML5 document, which needs none (and the report holds no URL).
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace siamrec::plot {

// &, <, >, " and ' as entities; control characters other than tab/newline dropped.
std::string xml_escape(std::string_view s);

class Svg {
 public:
  Svg(double width, double height, std::string_view label);
  // Shapes. `cls` is the element's class (tests count elements by class); `tip` becomes a
  // <title> child (a tooltip in browsers). Elements with a non-finite coordinate are skipped.
  void rect(double x, double y, double w, double h, std::string_view fill, std::string_view cls = "",
            std::string_view tip = "", double opacity = 1.0);
  void line(double x1, double y1, double x2, double y2, std::string_view stroke, double width = 1,
            std::string_view cls = "", bool dashed = false);
  void polyline(const std::vector<std::pair<double, double>>& pts, std::string_view stroke, double width = 2,
                std::string_view cls = "", bool dashed = false, std::string_view tip = "");
  void circle(double cx, double cy, double r, std::string_view fill, std::string_view cls = "",
              std::string_view tip = "", double opacity = 1.0);
  enum class Anchor { Start, Middle, End };
  void text(double x, double y, std::string_view s, Anchor a = Anchor::Start, double size = 12,
            std::string_view cls = "", double rotate = 0, bool bold = false);
  std::string str() const;

 private:
  double w_, h_;
  std::string label_, body_;
};

}  // namespace siamrec::plot
