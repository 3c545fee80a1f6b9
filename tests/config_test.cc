// The parameter table drives validation, defaults and the docs.
#include <gtest/gtest.h>

#include "config/config.h"
#include "config/params.h"
#include "testutil.h"
#include "util/error.h"
#include "util/io.h"

using namespace siamrec;

using test::error_of;

TEST(Config, DefaultsYamlAndOverrides) {
  Config c = Config::from_yaml_text(
      "data:\n  dataset: ml-100k\nsplit:\n  type: fixed\n  name: ua\neval:\n  k: [5, 10]\n", "t.yaml");
  EXPECT_EQ(c.str("data.dataset"), "ml-100k");
  EXPECT_EQ(c.ints("eval.k"), (std::vector<int64_t>{5, 10}));
  EXPECT_EQ(c.str("model.type"), "pop");  // default
  c.set_override("eval.k=20,50");
  EXPECT_EQ(c.ints("eval.k"), (std::vector<int64_t>{20, 50}));
  c.set_override("eval.k=[1, 2]");
  EXPECT_EQ(c.ints("eval.k"), (std::vector<int64_t>{1, 2}));
  // The resolved YAML reads back to the same values.
  Config back = Config::from_yaml_text(c.to_yaml(), "resolved");
  EXPECT_EQ(back.to_yaml(), c.to_yaml());
  EXPECT_EQ(back.str("split.name"), "ua");
}

TEST(Config, UnknownKeySuggestsAndNamesSource) {
  auto m = error_of([] { Config::from_yaml_text("split:\n  tpye: loo\n", "my.yaml"); });
  EXPECT_NE(m.find("unknown config key 'split.tpye'"), std::string::npos) << m;
  EXPECT_NE(m.find("my.yaml"), std::string::npos) << m;
  EXPECT_NE(m.find("did you mean 'split.type'"), std::string::npos) << m;
}

TEST(Config, WrongTypesAndValuesListAllowed) {
  Config c;
  auto m = error_of([&] { c.set_override("model.type=transformerzz"); });
  EXPECT_NE(m.find("'transformerzz' is not allowed"), std::string::npos) << m;
  EXPECT_NE(m.find("itemknn"), std::string::npos) << m;
  m = error_of([&] { c.set_override("eval.k=ten"); });
  EXPECT_NE(m.find("expected a list of integers"), std::string::npos) << m;
  m = error_of([&] { c.set_override("eval.k=0"); });
  EXPECT_NE(m.find("outside"), std::string::npos) << m;
  m = error_of([&] { c.set_override("split.valid=maybe"); });
  EXPECT_NE(m.find("expected true or false"), std::string::npos) << m;
  m = error_of([&] { c.set_override("eval.candidates=uniform:x"); });
  EXPECT_NE(m.find("allowed: full, uniform:N"), std::string::npos) << m;
  m = error_of([&] { c.set_override("data.dataset=ml-20m"); });
  EXPECT_NE(m.find("ml-100k"), std::string::npos) << m;
  m = error_of([&] { c.set_override("novalue"); });
  EXPECT_NE(m.find("key=value"), std::string::npos) << m;
  m = error_of([] { Config::from_yaml_text("a: [b\n", "broken.yaml"); });
  EXPECT_NE(m.find("broken.yaml: invalid YAML at line"), std::string::npos) << m;
  m = error_of([] { Config::from_yaml_file("/nonexistent.yaml"); });
  EXPECT_NE(m.find("does not exist"), std::string::npos) << m;
}

TEST(Config, ParameterDocsAreGeneratedFromTheTable) {
  std::string doc = read_file(std::string(SIAMREC_SOURCE_DIR) + "/docs/parameters.md");
  EXPECT_EQ(doc, params_markdown()) << "regenerate with: siamrec params --markdown > docs/parameters.md";
}
