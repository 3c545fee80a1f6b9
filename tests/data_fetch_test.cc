// Archive unpacking (the part of `siamrec fetch` that runs offline) and the ml-1m reader on a
// synthetic copy of its layout (the shared data directory has no complete ratings.dat).
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include "data/fetch.h"
#include "data/registry.h"
#include "testutil.h"
#include "util/error.h"
#include "util/io.h"

using namespace siamrec;

static void make_zip(const std::string& path, const std::vector<std::pair<std::string, std::string>>& files) {
  struct archive* a = archive_write_new();
  archive_write_set_format_zip(a);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
  for (auto& [name, data] : files) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_write_header(a, e);
    archive_write_data(a, data.data(), data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

TEST(Fetch, UnpacksZipIntoFolders) {
  test::TempDir t;
  make_zip(t.path() + "/x.zip", {{"ml-1m/movies.dat", "1::Toy Story (1995)::Animation\n"}, {"ml-1m/README", "terms"}});
  unpack_archive(t.path() + "/x.zip", t.path() + "/out");
  EXPECT_EQ(read_file(t.path() + "/out/ml-1m/movies.dat"), "1::Toy Story (1995)::Animation\n");
  EXPECT_EQ(read_file(t.path() + "/out/ml-1m/README"), "terms");
}

TEST(Fetch, RefusesUnsafePathsAndCorruptArchives) {
  test::TempDir t;
  make_zip(t.path() + "/evil.zip", {{"../escape.txt", "x"}});
  EXPECT_THROW(unpack_archive(t.path() + "/evil.zip", t.path() + "/out"), Error);
  EXPECT_FALSE(file_exists(t.path() + "/escape.txt"));
  std::string junk = t.file("junk.zip", "PK\x03\x04 this is not really a zip archive at all");
  EXPECT_THROW(unpack_archive(junk, t.path() + "/out2"), Error);
}

TEST(Ml1m, ReadsRatingsDatWhenPresent) {
  test::TempDir t;
  t.file("ml-1m/movies.dat",
         "1::Toy Story (1995)::Animation|Children's\n2::Jumanji (1995)::Adventure\n3::Heat (1995)::Action\n");
  t.file("ml-1m/users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n");
  LoadOptions o;
  o.data_dir_flag = t.path();
  o.use_cache = false;
  Dataset meta_only = load_dataset("ml-1m", o);
  EXPECT_EQ(meta_only.log.size(), 0u);
  EXPECT_EQ(meta_only.n_items(), 3);
  t.file("ml-1m/ratings.dat", "1::1::5::978300760\n1::2::3::978302109\n2::1::4::978301968\n");
  Dataset full = load_dataset("ml-1m", o);
  EXPECT_EQ(full.log.size(), 3u);
  EXPECT_EQ(full.n_users(), 2);
  EXPECT_EQ(full.n_items(), 2);  // items with interactions
  EXPECT_EQ(full.item_title(full.items.find("2")), "Jumanji (1995)");
  EXPECT_FLOAT_EQ(full.log.rating[0], 5.0f);
  t.file("ml-1m/ratings.dat", "1::1::5::978300760\n1::x::3::978302109\n");
  try {
    load_dataset("ml-1m", o);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("ratings.dat:2"), std::string::npos) << e.what();
  }
}
