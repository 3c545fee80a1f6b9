// Readers on small inline fixtures, and every bad-input case with a message naming file/line/field.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <random>
#include <sstream>

#include "config/config.h"
#include "data/formats.h"
#include "data/readers.h"
#include "data/registry.h"
#include "testutil.h"
#include "util/error.h"

using namespace siamrec;
using siamrec::test::TempDir;

static DelimitedFormat tsv4() {
  DelimitedFormat f;
  f.user = "0", f.item = "1", f.rating = "2", f.time = "3";
  f.numeric_ids = true;
  return f;
}

using test::error_of;

// Captures what the default spdlog logger writes while alive: the readers report skipped lines in
// one warning, which is how a caller learns the count.
class LogCapture {
 public:
  LogCapture() : prev_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_));
    logger->set_level(spdlog::level::trace);
    logger->set_pattern("%v");
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(prev_); }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> prev_;
};

static size_t occurrences(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + 1)) ++n;
  return n;
}

TEST(Delimited, ReadsColumnsAndSortsIdsNumerically) {
  TempDir t;
  auto p = t.file("log.tsv", "10\t5\t4\t100\n2\t5\t3\t90\n10\t30\t1\t80\n");
  RawLog raw = read_delimited(p, tsv4());
  ASSERT_EQ(raw.size(), 3u);
  Dataset ds = dataset_from_raw(raw, "fx");
  EXPECT_EQ(ds.n_users(), 2);
  EXPECT_EQ(ds.n_items(), 2);
  EXPECT_EQ(ds.users.original(0), "2");  // numeric order: 2 < 10
  EXPECT_EQ(ds.users.original(1), "10");
  EXPECT_EQ(ds.items.find("30"), 1);
  EXPECT_EQ(ds.log.user[0], 1);
  EXPECT_FLOAT_EQ(ds.log.rating[2], 1.0f);
  EXPECT_EQ(ds.log.time[1], 90);
}

TEST(Delimited, HeaderNamesCommentsAndQuotes) {
  TempDir t;
  auto p = t.file("log.csv", "# comment\nuid,\"movie\",score\nu1,\"a,b\",5\n# another\nu2,c,1\n");
  DelimitedFormat f;
  f.delimiter = ",";
  f.header = true;
  f.quoted = true;
  f.user = "uid", f.item = "movie", f.rating = "score";
  RawLog raw = read_delimited(p, f);
  ASSERT_EQ(raw.size(), 2u);
  EXPECT_EQ(raw.items[0], "a,b");
  EXPECT_EQ(raw.users[1], "u2");
}

TEST(Delimited, MissingFile) {
  auto m = error_of([] { read_delimited("/nonexistent/x.tsv", tsv4()); });
  EXPECT_NE(m.find("/nonexistent/x.tsv"), std::string::npos);
  EXPECT_NE(m.find("does not exist"), std::string::npos);
}

TEST(Delimited, EmptyFile) {
  TempDir t;
  auto p = t.file("e.tsv", "\n  \n");
  auto m = error_of([&] { read_delimited(p, tsv4()); });
  EXPECT_NE(m.find("is empty"), std::string::npos) << m;
}

TEST(Delimited, NonNumericIdNamesLineAndField) {
  TempDir t;
  auto p = t.file("x.tsv", "1\t2\t3\t4\nabc\t2\t3\t4\n");
  auto m = error_of([&] { read_delimited(p, tsv4()); });
  EXPECT_NE(m.find(p + ":2"), std::string::npos) << m;
  EXPECT_NE(m.find("'user'"), std::string::npos) << m;
  EXPECT_NE(m.find("not an integer"), std::string::npos) << m;
}

TEST(Delimited, NaNAndNegativeRatings) {
  TempDir t;
  auto p = t.file("x.tsv", "1\t2\tnan\t4\n");
  EXPECT_NE(error_of([&] { read_delimited(p, tsv4()); }).find("NaN"), std::string::npos);
  auto q = t.file("y.tsv", "1\t2\t3\t4\n1\t3\t-2\t4\n");
  auto m = error_of([&] { read_delimited(q, tsv4()); });
  EXPECT_NE(m.find(q + ":2"), std::string::npos) << m;
  EXPECT_NE(m.find("negative rating"), std::string::npos) << m;
}

TEST(Delimited, WrongDelimiterIsNamed) {
  TempDir t;
  auto p = t.file("x.csv", "1,2,3,4\n");
  auto m = error_of([&] { read_delimited(p, tsv4()); });
  EXPECT_NE(m.find("wrong delimiter"), std::string::npos) << m;
  EXPECT_NE(m.find(p + ":1"), std::string::npos) << m;
}

TEST(Delimited, UnknownColumnNameListsHeader) {
  TempDir t;
  auto p = t.file("x.csv", "user,item\n1,2\n");
  DelimitedFormat f;
  f.delimiter = ",";
  f.header = true;
  f.user = "user", f.item = "movie";
  auto m = error_of([&] { read_delimited(p, f); });
  EXPECT_NE(m.find("unknown column name 'movie'"), std::string::npos) << m;
  EXPECT_NE(m.find("user, item"), std::string::npos) << m;
}

TEST(Delimited, BadTimestamp) {
  TempDir t;
  auto p = t.file("x.tsv", "1\t2\t3\tyesterday\n");
  auto m = error_of([&] { read_delimited(p, tsv4()); });
  EXPECT_NE(m.find("'time'"), std::string::npos) << m;
}

TEST(Delimited, SkipBadLinesCountsAndKeepsGoodOnes) {
  TempDir t;
  // Line 1 good; line 2 has one field (of 4); line 3 has a non-integer item id; line 4 good.
  auto p = t.file("x.tsv", "1\t2\t3\t4\nbad line\n1\tx\t3\t4\n2\t2\t5\t6\n");
  ReadOptions o;
  o.skip_bad_lines = true;
  RawLog raw;
  std::string log;
  {
    LogCapture cap;
    raw = read_delimited(p, tsv4(), o);
    log = cap.text();
  }
  // The two good lines, in file order, every column.
  ASSERT_EQ(raw.size(), 2u);
  EXPECT_EQ(raw.users, (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(raw.items, (std::vector<std::string>{"2", "2"}));
  EXPECT_EQ(raw.rating, (std::vector<float>{3.0f, 5.0f}));
  EXPECT_EQ(raw.time, (std::vector<int64_t>{4, 6}));
  // The two bad lines are counted in one warning that names the first problem (line 2).
  EXPECT_EQ(occurrences(log, "skipped "), 1u) << log;
  EXPECT_NE(log.find("skipped 2 malformed line(s) in '" + p + "'"), std::string::npos) << log;
  EXPECT_NE(log.find("first: " + p + ":2: expected at least 4 fields separated by TAB, found 1"), std::string::npos)
      << log;
  EXPECT_EQ(log.find(p + ":3"), std::string::npos) << log;  // only the first problem is quoted
  // As a dataset: users "1" and "2", one item "2", two interactions.
  Dataset ds = dataset_from_raw(raw, "fx");
  EXPECT_EQ(ds.n_users(), 2);
  EXPECT_EQ(ds.n_items(), 1);
  EXPECT_EQ(ds.log.size(), 2u);
  EXPECT_EQ(ds.log.user, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(ds.log.item, (std::vector<int32_t>{0, 0}));
  // A clean file read with skip_bad_lines warns about nothing.
  auto clean = t.file("clean.tsv", "1\t2\t3\t4\n2\t2\t5\t6\n");
  std::string quiet;
  {
    LogCapture cap;
    EXPECT_EQ(read_delimited(clean, tsv4(), o).size(), 2u);
    quiet = cap.text();
  }
  EXPECT_EQ(quiet.find("skipped"), std::string::npos) << quiet;
}

TEST(Delimited, AllLinesBadIsAnError) {
  TempDir t;
  auto p = t.file("x.tsv", "bad\nworse\n");
  ReadOptions o;
  o.skip_bad_lines = true;
  EXPECT_NE(error_of([&] { read_delimited(p, tsv4(), o); }).find("no valid interaction"), std::string::npos);
}

TEST(LightGcn, ReadsPairsAndRejectsGarbage) {
  TempDir t;
  auto p = t.file("train.txt", "0 1 2 3\n1 2\n\n2\n");
  IdPairs ip = read_lightgcn(p);
  ASSERT_EQ(ip.user.size(), 4u);
  EXPECT_EQ(ip.item[3], 2);
  auto q = t.file("bad.txt", "0 1 x\n");
  auto m = error_of([&] { read_lightgcn(q); });
  EXPECT_NE(m.find(q + ":1"), std::string::npos) << m;
  EXPECT_NE(m.find("item #2"), std::string::npos) << m;
}

TEST(RemapList, HeaderAndGaps) {
  TempDir t;
  auto p = t.file("l.txt", "org_id remap_id\n10 1\n7 0\n");
  auto v = read_remap_list(p);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0], "7");
  auto q = t.file("g.txt", "10 2\n7 0\n");
  EXPECT_NE(error_of([&] { read_remap_list(q); }).find("remapped id 1 is missing"), std::string::npos);
}

TEST(Ncf, ReadsNegativesAndChecksPairs) {
  TempDir t;
  auto r = t.file("t.rating", "0\t5\t4\t100\n1\t6\t3\t200\n");
  auto n = t.file("t.negative", "(0,5)\t1\t2\t3\n(1,6)\t4\t7\n");
  NcfTest nt = read_ncf(r, n);
  ASSERT_EQ(nt.negatives.size(), 2u);
  EXPECT_EQ(nt.negatives[1], (std::vector<int64_t>{4, 7}));
  auto bad = t.file("b.negative", "(0,9)\t1\n");
  auto m = error_of([&] { read_ncf(r, bad); });
  EXPECT_NE(m.find("(0,9) is not in"), std::string::npos) << m;
  auto missing = t.file("m.negative", "(0,5)\t1\n");
  EXPECT_NE(error_of([&] { read_ncf(r, missing); }).find("no negatives for test pair (1,6)"), std::string::npos);
}

TEST(RecBole, AtomicFilesWithSideData) {
  TempDir t;
  t.file("d.inter",
         "user_id:token\titem_id:token\trating:float\ttimestamp:float\nu1\ti1\t5\t10\nu2\ti2\t3\t20\nu1\ti2\t4\t30\n");
  t.file("d.item",
         "item_id:token\tmovie_title:token_seq\tclass:token_seq\ni1\tToy Story\tAnimation Comedy\ni2\tHeat\tAction\n");
  t.file("d.user", "user_id:token\tgender:token\nu1\tF\nu2\tM\n");
  Dataset ds = read_recbole(t.path() + "/d");
  EXPECT_EQ(ds.n_users(), 2);
  EXPECT_EQ(ds.n_items(), 2);
  EXPECT_EQ(ds.log.size(), 3u);
  EXPECT_EQ(ds.item_title(ds.items.find("i1")), "Toy Story");
  EXPECT_EQ(ds.item_side.genres[ds.items.find("i1")].size(), 2u);
  EXPECT_EQ(ds.user_side.features[ds.users.find("u2")][0], "gender=M");
}

TEST(RecBole, BadHeaderType) {
  TempDir t;
  t.file("d.inter", "user_id:token\titem_id:blob\nu1\ti1\n");
  auto m = error_of([&] { read_recbole(t.path() + "/d"); });
  EXPECT_NE(m.find("unknown type 'blob'"), std::string::npos) << m;
}

TEST(RecBole, MissingField) {
  TempDir t;
  t.file("d.inter", "uid:token\titem_id:token\nu1\ti1\n");
  auto m = error_of([&] { read_recbole(t.path() + "/d"); });
  EXPECT_NE(m.find("'user_id'"), std::string::npos) << m;
}

TEST(MovieLensMeta, Ml100kItemsLatin1AndGenres) {
  TempDir t;
  auto g = t.file("u.genre", "unknown|0\nAction|1\nComedy|2\n\n");
  auto i = t.file("u.item", "1|Caf\xe9 (1995)|01-Jan-1995||http://x|0|1|1\n");
  auto meta = read_ml100k_items(i, g);
  ASSERT_EQ(meta.count("1"), 1u);
  EXPECT_EQ(meta["1"].title, "Caf\xc3\xa9 (1995)");
  EXPECT_EQ(meta["1"].genres, (std::vector<std::string>{"Action", "Comedy"}));
  auto bad = t.file("bad.item", "1|X|d||u|0|2|1\n");
  auto m = error_of([&] { read_ml100k_items(bad, g); });
  EXPECT_NE(m.find("not 0 or 1"), std::string::npos) << m;
}

TEST(MovieLensMeta, LatestSmallQuotedTitlesAndTags) {
  TempDir t;
  auto mv = t.file("movies.csv", "movieId,title,genres\n11,\"American President, The (1995)\",Comedy|Drama|Romance\n");
  auto tg = t.file("tags.csv", "userId,movieId,tag,timestamp\n1,11,Funny,5\n2,11,funny,6\n2,11,politics,6\n");
  auto meta = read_mlsmall_movies(mv);
  read_mlsmall_tags(tg, meta);
  EXPECT_EQ(meta["11"].title, "American President, The (1995)");
  EXPECT_EQ(meta["11"].tags, (std::vector<std::string>{"funny", "politics"}));
}

// Randomized robustness: mutated fixture lines never crash a reader; every failure is a DataError
// or ConfigError with a message.
TEST(ReaderFuzz, MutatedInputsNeverCrash) {
  TempDir t;
  std::mt19937 rng(123);
  const std::string seeds[] = {"1\t2\t3\t4\n2\t3\t4\t5\n", "0 1 2 3\n1 2 3\n", "(0,5)\t1\t2\n",
                               "user_id:token\titem_id:token\nu\ti\n", "1|T|d||u|0|1\n"};
  const char alphabet[] = "0123456789\t\n ,|:()-.naeE\"#\xff\x00";
  int failures = 0, runs = 0;
  for (int iter = 0; iter < 400; ++iter) {
    std::string s = seeds[iter % 5];
    int muts = 1 + rng() % 6;
    for (int k = 0; k < muts; ++k) {
      size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
      int op = rng() % 3;
      char c = alphabet[rng() % (sizeof alphabet - 1)];
      if (op == 0)
        s.insert(s.begin() + pos, c);
      else if (op == 1 && pos < s.size())
        s.erase(s.begin() + pos);
      else if (pos < s.size())
        s[pos] = c;
    }
    auto p = t.file("fuzz" + std::to_string(iter), s);
    auto g = t.file("g", "unknown|0\nAction|1\n");
    for (int reader = 0; reader < 5; ++reader) {
      ++runs;
      try {
        switch (reader) {
          case 0:
            read_delimited(p, tsv4());
            break;
          case 1:
            read_lightgcn(p);
            break;
          case 2:
            read_ncf(p, p);
            break;
          case 3: {
            t.file("fz.inter", s);
            read_recbole(t.path() + "/fz");
            break;
          }
          case 4:
            read_ml100k_items(p, g);
            break;
        }
      } catch (const Error& e) {
        ++failures;
        EXPECT_GT(std::string(e.what()).size(), 10u);
      }
    }
  }
  EXPECT_GT(failures, 0);
  EXPECT_LT(failures, runs);
}

// data.format amazon_json (data/formats/amazon_json.cc): JSON lines of Amazon reviews.
TEST(AmazonJson, ReadsTheFourFieldsAndIgnoresTheRest) {
  TempDir t;
  std::string p =
      t.file("reviews.json",
             "{\"reviewerID\": \"A2\", \"asin\": \"B001\", \"overall\": 5.0, \"unixReviewTime\": 1400000000, "
             "\"reviewText\": \"great\", \"helpful\": [1, 2]}\n"
             "\n"
             "{\"asin\": \"B002\", \"reviewerID\": \"A1\", \"overall\": 3, \"unixReviewTime\": 1300000000}\n"
             "{\"reviewerID\": \"A2\", \"asin\": \"B002\", \"overall\": 4.0, \"unixReviewTime\": 1500000000}\n");
  Dataset ds = data_format("amazon_json").read(p, Config(), ReadOptions{});
  ASSERT_EQ(ds.log.size(), 3u);
  EXPECT_EQ(ds.n_users(), 2);
  EXPECT_EQ(ds.n_items(), 2);
  EXPECT_EQ(ds.users.original(ds.log.user[0]), "A2");
  EXPECT_EQ(ds.items.original(ds.log.item[1]), "B002");
  EXPECT_EQ(ds.log.rating, (std::vector<float>{5.0f, 3.0f, 4.0f}));
  EXPECT_EQ(ds.log.time, (std::vector<int64_t>{1400000000, 1300000000, 1500000000}));
}

TEST(AmazonJson, BadLinesNameFileLineAndField) {
  TempDir t;
  const std::string good = "{\"reviewerID\": \"A\", \"asin\": \"B\", \"overall\": 5, \"unixReviewTime\": 1}\n";
  struct Case {
    std::string line, expect;
  } cases[] = {
      {"{\"reviewerID\": \"A\", \"overall\": 5, \"unixReviewTime\": 1}", ":2: field 'asin': missing"},
      {"{\"reviewerID\": 7, \"asin\": \"B\", \"overall\": 5, \"unixReviewTime\": 1}",
       ":2: field 'reviewerID': wrong type"},
      {"{\"reviewerID\": \"A\", \"asin\": \"B\", \"overall\": \"5\", \"unixReviewTime\": 1}",
       ":2: field 'overall': wrong type"},
      {"{\"reviewerID\": \"A\", \"asin\": \"B\", \"overall\": 5, \"unixReviewTime\": 1e23}",
       ":2: field 'unixReviewTime': wrong type"},
      {"{\"reviewerID\": \"A\", \"asin\": \"\", \"overall\": 5, \"unixReviewTime\": 1}",
       ":2: field 'asin': wrong type"},
      {"{\"reviewerID\": \"A\", \"asin\": \"B\"", ":2: not a JSON object"},
      {"[1, 2]", ":2: not a JSON object"},
  };
  for (auto& c : cases) {
    std::string p = t.file("bad.json", good + c.line + "\n" + good);
    auto msg = error_of<DataError>([&] { data_format("amazon_json").read(p, Config(), ReadOptions{}); });
    EXPECT_NE(msg.find(p + c.expect), std::string::npos) << c.line << " -> " << msg;
    // --skip-bad-lines keeps the two good lines.
    ReadOptions skip;
    skip.skip_bad_lines = true;
    EXPECT_EQ(data_format("amazon_json").read(p, Config(), skip).log.size(), 2u) << c.line;
  }
  EXPECT_THROW(data_format("amazon_json").read(t.path() + "/absent.json", Config(), ReadOptions{}), DataError);
  auto msg = error_of<ConfigError>([] { data_format("amazon_jsonl"); });
  EXPECT_NE(msg.find("amazon_json, delimited, recbole, sessions"), std::string::npos) << msg;
}
