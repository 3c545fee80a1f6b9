#include "plot/svg.h"

#include <cmath>

#include <fmt/format.h>

namespace siamrec::plot {

std::string xml_escape(std::string_view s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') break;  // not allowed in XML 1.0
        o += c;
    }
  }
  return o;
}

namespace {
bool finite(std::initializer_list<double> v) {
  for (double x : v)
    if (!std::isfinite(x)) return false;
  return true;
}
std::string num(double v) {
  std::string s = fmt::format("{:.1f}", v);
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  return s == "-0" ? "0" : s;
}
std::string cls_attr(std::string_view cls) {
  return cls.empty() ? std::string() : fmt::format(" class=\"{}\"", xml_escape(cls));
}
std::string opacity_attr(double o) { return o < 1.0 ? fmt::format(" fill-opacity=\"{:.2f}\"", o) : std::string(); }
// An element closed directly, or around its <title> tooltip.
std::string close(std::string_view tag, std::string_view tip) {
  if (tip.empty()) return "/>";
  return fmt::format("><title>{}</title></{}>", xml_escape(tip), tag);
}
}  // namespace

Svg::Svg(double width, double height, std::string_view label) : w_(width), h_(height), label_(label) {}

void Svg::rect(double x, double y, double w, double h, std::string_view fill, std::string_view cls,
               std::string_view tip, double opacity) {
  if (!finite({x, y, w, h})) return;
  if (w < 0) x += w, w = -w;
  if (h < 0) y += h, h = -h;
  body_ += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"{}{}{}\n", num(x), num(y), num(w),
                       num(h), xml_escape(fill), opacity_attr(opacity), cls_attr(cls), close("rect", tip));
}

void Svg::line(double x1, double y1, double x2, double y2, std::string_view stroke, double width, std::string_view cls,
               bool dashed) {
  if (!finite({x1, y1, x2, y2})) return;
  body_ += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"{}\"{}{}/>\n",
                       num(x1), num(y1), num(x2), num(y2), xml_escape(stroke), num(width),
                       dashed ? " stroke-dasharray=\"5,4\"" : "", cls_attr(cls));
}

void Svg::polyline(const std::vector<std::pair<double, double>>& pts, std::string_view stroke, double width,
                   std::string_view cls, bool dashed, std::string_view tip) {
  std::string p;
  for (auto& [x, y] : pts) {
    if (!finite({x, y})) continue;
    if (!p.empty()) p += ' ';
    p += num(x) + "," + num(y);
  }
  if (p.empty()) return;
  body_ += fmt::format(
      "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" stroke-linejoin=\"round\"{}{}{}\n", p,
      xml_escape(stroke), num(width), dashed ? " stroke-dasharray=\"6,4\"" : "", cls_attr(cls), close("polyline", tip));
}

void Svg::circle(double cx, double cy, double r, std::string_view fill, std::string_view cls, std::string_view tip,
                 double opacity) {
  if (!finite({cx, cy, r})) return;
  body_ += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\"{}{}{}\n", num(cx), num(cy), num(r),
                       xml_escape(fill), opacity_attr(opacity), cls_attr(cls), close("circle", tip));
}

void Svg::text(double x, double y, std::string_view s, Anchor a, double size, std::string_view cls, double rotate,
               bool bold) {
  if (!finite({x, y})) return;
  const char* anchor = a == Anchor::Start ? "start" : a == Anchor::Middle ? "middle" : "end";
  std::string rot = rotate != 0 ? fmt::format(" transform=\"rotate({} {} {})\"", num(rotate), num(x), num(y)) : "";
  body_ += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"{}\" font-size=\"{}\"{}{}{}>{}</text>\n", num(x), num(y),
                       anchor, num(size), bold ? " font-weight=\"bold\"" : "", rot, cls_attr(cls), xml_escape(s));
}

std::string Svg::str() const {
  return fmt::format(
      "<svg width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" role=\"img\" aria-label=\"{2}\" "
      "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n<title>{2}</title>\n{3}</svg>\n",
      num(w_), num(h_), xml_escape(label_), body_);
}

}  // namespace siamrec::plot
