// The engine benchmark's calibration logic (bench/calibration.h): a round where the machine
// itself gave less than its cores (a simulated busy core, or caches taken from outside) is
// flagged and left out; an engine that scales worse than a machine that scales is contention,
// never a busy core. Figures are simulated: no timing in unit tests.
#include <gtest/gtest.h>

#include "../bench/calibration.h"

using bench::Round;

static Round round_of(double compute, double rows, double engine_one, double engine_two) {
  Round r;
  r.machine.threads = 2;
  r.machine.compute = {100, 100 * compute};
  r.machine.memory = {10, 18};
  r.machine.rows = {50, 50 * rows};
  r.machine.transfer_ns = 230;
  r.engine_one = engine_one, r.engine_many = engine_two;
  return r;
}

TEST(BenchCalibration, BusyCoreIsFlaggedAndLeftOut) {
  // Round 2: the second core was taken (compute 1.02x); its engine ratio (0.9x) must not count.
  std::vector<Round> rs = {round_of(1.97, 1.9, 10, 19), round_of(1.02, 1.0, 10, 9), round_of(1.95, 1.85, 10, 18.6)};
  bench::Verdict v = bench::judge_scaling(rs, "per-example");
  EXPECT_EQ(v.busy, 1);
  EXPECT_EQ(v.flagged, (std::vector<bool>{false, true, false}));
  EXPECT_NEAR(v.engine, (1.9 + 1.86) / 2, 1e-9);  // the median of the two rounds kept
  EXPECT_FALSE(v.contention);
  EXPECT_NE(v.text.find("1 of 3 rounds flagged busy"), std::string::npos) << v.text;
}

TEST(BenchCalibration, CachesTakenFromOutsideAreFlaggedToo) {
  // Compute scales but the private-row loop does not: the machine, not the engine.
  std::vector<Round> rs = {round_of(1.95, 1.1, 10, 11), round_of(1.96, 1.9, 10, 19)};
  bench::Verdict v = bench::judge_scaling(rs, "mini-batch");
  EXPECT_EQ(v.flagged, (std::vector<bool>{true, false}));
  EXPECT_NEAR(v.engine, 1.9, 1e-9);
}

TEST(BenchCalibration, EngineContentionIsNotBlamedOnTheMachine) {
  // The machine gives ~1.9x in every round; the engine 0.86x (the finding): contention.
  std::vector<Round> rs = {round_of(1.9, 1.88, 15.4, 13.2), round_of(1.92, 1.9, 15.0, 13.0),
                           round_of(1.88, 1.86, 15.2, 13.1)};
  bench::Verdict v = bench::judge_scaling(rs, "per-example");
  EXPECT_EQ(v.busy, 0);
  EXPECT_TRUE(v.contention);
  EXPECT_LT(v.engine, 0.9);
  EXPECT_NEAR(v.machine, 1.9, 1e-9);
  EXPECT_NE(v.text.find("contention inside the engine"), std::string::npos) << v.text;
  EXPECT_EQ(v.text.find("busy core"), std::string::npos) << v.text;
}

TEST(BenchCalibration, EveryRoundBusyGivesNoFigure) {
  std::vector<Round> rs = {round_of(1.0, 1.0, 10, 10), round_of(1.1, 1.0, 10, 10)};
  bench::Verdict v = bench::judge_scaling(rs, "per-example");
  EXPECT_EQ(v.busy, 2);
  EXPECT_EQ(v.engine, 0);
  EXPECT_FALSE(v.contention);
  EXPECT_NE(v.text.find("no scaling figure"), std::string::npos) << v.text;
}

TEST(BenchCalibration, MedianAndRatios) {
  EXPECT_EQ(bench::median_of({}), 0);
  EXPECT_EQ(bench::median_of({3, 1, 2}), 2);
  EXPECT_EQ(bench::median_of({4, 1, 3, 2}), 2.5);
  bench::LoopScaling l{2, 3};
  EXPECT_EQ(l.ratio(), 1.5);
  EXPECT_EQ(bench::LoopScaling{}.ratio(), 0);
}
