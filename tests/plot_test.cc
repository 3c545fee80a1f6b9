// The SVG writer and charts of the report (src/plot).
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "plot/chart.h"
#include "plot/svg.h"

using namespace siamrec::plot;

namespace {
size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}
}  // namespace

TEST(Svg, EscapesTextAttributesAndTooltips) {
  EXPECT_EQ(xml_escape("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
  EXPECT_EQ(xml_escape(std::string("x\x01y\x1bz")), "xyz");  // control characters are not XML
  Svg s(100, 50, "fig <1>");
  s.text(1, 2, "</text><script>alert(1)</script>");
  s.circle(5, 5, 2, "#000", "point", "Toy Story <1995> & co");
  const std::string out = s.str();
  EXPECT_EQ(out.find("<script>"), std::string::npos);
  EXPECT_NE(out.find("&lt;/text&gt;&lt;script&gt;"), std::string::npos);
  EXPECT_NE(out.find("<title>Toy Story &lt;1995&gt; &amp; co</title></circle>"), std::string::npos);
  EXPECT_NE(out.find("aria-label=\"fig &lt;1&gt;\""), std::string::npos);
  EXPECT_EQ(out.find("xmlns"), std::string::npos);  // inline HTML SVG: no namespace URL
}

TEST(Svg, SkipsNonFiniteCoordinatesAndRoundsNumbers) {
  Svg s(10, 10, "t");
  s.circle(NAN, 1, 1, "#000", "point");
  s.rect(1, 1, INFINITY, 1, "#000", "bar");
  s.line(0.04, 1.26, 2, 3, "#000");
  s.rect(5, 5, -2, -3, "#000", "neg");  // negative sizes are normalised, not dropped
  const std::string out = s.str();
  EXPECT_EQ(count(out, "class=\"point\""), 0u);
  EXPECT_EQ(count(out, "class=\"bar\""), 0u);
  EXPECT_NE(out.find("x1=\"0\" y1=\"1.3\""), std::string::npos);
  EXPECT_NE(out.find("<rect x=\"3\" y=\"2\" width=\"2\" height=\"3\""), std::string::npos);
  EXPECT_EQ(out.find("nan"), std::string::npos);
  EXPECT_EQ(out.find("inf"), std::string::npos);
}

TEST(Chart, NiceTicksCoverTheRangeWithRoundSteps) {
  auto t = nice_ticks(0, 1, 5);
  ASSERT_EQ(t.size(), 6u);
  EXPECT_DOUBLE_EQ(t[1], 0.2);
  t = nice_ticks(0.1213, 0.2922, 5);
  ASSERT_GE(t.size(), 3u);
  EXPECT_GE(t.front(), 0.1213 - 1e-12);
  EXPECT_LE(t.back(), 0.2922 + 1e-12);
  const double step = t[1] - t[0];
  EXPECT_NEAR(step, 0.05, 1e-12);  // range 0.17 / 5 = 0.034 -> 0.05 (at most ~5 ticks)
  EXPECT_EQ(t[1], 0.2);            // exact multiples, no accumulated rounding
  EXPECT_EQ(nice_ticks(3, 3).size(), 1u);
  EXPECT_TRUE(nice_ticks(NAN, 1).empty());
  EXPECT_EQ(tick_label(0.25, 0.05), "0.25");
  EXPECT_EQ(tick_label(0.3, 0.1), "0.3");
  EXPECT_EQ(tick_label(25000, 5000), "25,000");
  EXPECT_EQ(tick_label(1250000, 250000), "1.2e+06");
}

TEST(Chart, GroupedBarsWithWhiskersAndALegendEntryPerSeries) {
  Figure f;
  f.title = "Accuracy";
  f.categories = {"P@10", "R@10", "NDCG@10"};
  for (int r = 0; r < 3; ++r) {
    Series s;
    s.name = "run" + std::to_string(r);
    s.kind = Series::Kind::Bars;
    s.y = {0.1 + r * 0.05, 0.2, 0.3};
    s.lo = {0.09 + r * 0.05, 0.18, NAN};  // the third value has no interval
    s.hi = {0.11 + r * 0.05, 0.22, NAN};
    f.series.push_back(s);
  }
  const std::string out = render(f);
  EXPECT_EQ(count(out, "class=\"bar\""), 9u);
  EXPECT_EQ(count(out, "class=\"whisker\""), 6u);
  EXPECT_EQ(count(out, "class=\"legend\""), 3u);
  for (auto* c : {"#0072B2", "#E69F00", "#009E73"}) EXPECT_NE(out.find(c), std::string::npos) << c;
  EXPECT_NE(out.find(">NDCG@10<"), std::string::npos);
}

TEST(Chart, LinesPointsBoxesMarkersAndEmptyFigures) {
  Figure f;
  f.vlines = {{3, "chosen: 3"}};
  f.diagonal = true;
  Series l;
  l.name = "loss";
  l.x = {1, 2, 3, 4};
  l.y = {4, 3, NAN, 1};  // the NaN is skipped, not drawn as 0
  f.series.push_back(l);
  Series p;
  p.name = "users";
  p.kind = Series::Kind::Points;
  p.x = {0.1, 0.2, 0.3};
  p.y = {0.3, 0.2, 0.1};
  p.point_colors = {0, -1, 2};
  f.series.push_back(p);
  std::string out = render(f);
  EXPECT_EQ(count(out, "class=\"series-line\""), 1u);
  EXPECT_EQ(count(out, "class=\"vertex\""), 3u);
  EXPECT_EQ(count(out, "class=\"point\""), 3u);
  EXPECT_EQ(count(out, "class=\"marker\""), 1u);
  EXPECT_EQ(count(out, "class=\"diagonal\""), 1u);
  EXPECT_NE(out.find("#aaaaaa"), std::string::npos);  // palette index -1: grey ("other")

  Figure b;
  b.categories = {"A", "B"};
  Series bx;
  bx.kind = Series::Kind::Box;
  bx.box = {{0, 0.1, 0.2, 0.3, 0.5}, {NAN, NAN, NAN, NAN, NAN}};
  bx.y = {0.22, NAN};
  b.series.push_back(bx);
  out = render(b);
  EXPECT_EQ(count(out, "class=\"box\""), 1u);
  EXPECT_EQ(count(out, "class=\"median\""), 1u);
  EXPECT_EQ(count(out, "class=\"mean\""), 1u);

  Figure e;
  e.title = "nothing";
  out = render(e);
  EXPECT_NE(out.find(">no data<"), std::string::npos);
  EXPECT_EQ(out.find("nan"), std::string::npos);
}
