#include "data/summary.h"

#include <algorithm>
#include <ctime>
#include <functional>

#include <fmt/format.h>

#include "util/strings.h"

namespace siamrec {

DatasetSummary summarize(const Dataset& ds) {
  DatasetSummary s;
  s.name = ds.name;
  s.description = ds.description;
  s.users = ds.n_users();
  s.items = ds.n_items();
  s.interactions = static_cast<int64_t>(ds.log.size());
  s.density = ds.density();
  std::vector<int64_t> du(ds.n_users(), 0), di(ds.n_items(), 0);
  for (size_t r = 0; r < ds.log.size(); ++r) ++du[ds.log.user[r]], ++di[ds.log.item[r]];
  s.active_users = std::count_if(du.begin(), du.end(), [](int64_t d) { return d > 0; });
  s.active_items = std::count_if(di.begin(), di.end(), [](int64_t d) { return d > 0; });
  for (float r : ds.log.rating) s.rating_histogram[r]++;
  if (ds.log.has_time() && !ds.log.time.empty()) {
    auto [mn, mx] = std::minmax_element(ds.log.time.begin(), ds.log.time.end());
    s.time_min = *mn, s.time_max = *mx;
  }
  std::sort(di.begin(), di.end(), std::greater<>());
  int64_t top = (s.active_items * 20 + 99) / 100, sum = 0;  // ceil(20% of active items)
  for (int64_t k = 0; k < top; ++k) sum += di[k];
  s.top20_share = s.interactions ? static_cast<double>(sum) / s.interactions : 0;
  for (int32_t i = 0; i < static_cast<int32_t>(ds.item_side.title.size()); ++i)
    s.items_with_title += !ds.item_side.title[i].empty();
  for (auto& g : ds.item_side.genres) s.items_with_genres += !g.empty();
  for (auto& t : ds.item_side.tags) s.items_with_tags += !t.empty();
  s.genres = static_cast<int64_t>(ds.item_side.genre_vocab.size());
  s.memory_bytes = ds.memory_bytes();
  return s;
}

static std::string date(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%d", &tm);
  return b;
}

std::string summary_text(const DatasetSummary& s) {
  std::string o;
  o += fmt::format("dataset        {}\n", s.name);
  o += fmt::format("description    {}\n", s.description);
  o += fmt::format("users          {} ({} with interactions)\n", with_commas(s.users), with_commas(s.active_users));
  o += fmt::format("items          {} ({} with interactions)\n", with_commas(s.items), with_commas(s.active_items));
  o += fmt::format("interactions   {}\n", with_commas(s.interactions));
  o += fmt::format("density        {:.4f}%\n", 100 * s.density);
  if (s.interactions) o += fmt::format("top-20% items  {:.1f}% of interactions\n", 100 * s.top20_share);
  if (!s.rating_histogram.empty()) {
    o += "ratings       ";
    for (auto& [r, n] : s.rating_histogram) o += fmt::format(" {:g}:{}", r, with_commas(n));
    o += "\n";
  } else {
    o += "ratings        none (implicit feedback)\n";
  }
  if (s.time_max > 0)
    o += fmt::format("time range     {} .. {} (UTC)\n", date(s.time_min), date(s.time_max));
  else
    o += "time range     no timestamps\n";
  o += fmt::format("item side      {} titles, {} with genres ({} genres), {} with tags\n",
                   with_commas(s.items_with_title), with_commas(s.items_with_genres), s.genres,
                   with_commas(s.items_with_tags));
  o += fmt::format("memory         {:.1f} MB\n", s.memory_bytes / 1e6);
  return o;
}

nlohmann::json summary_json(const DatasetSummary& s) {
  nlohmann::json h = nlohmann::json::object();
  for (auto& [r, n] : s.rating_histogram) h[fmt::format("{:g}", r)] = n;
  return {{"dataset", s.name},
          {"description", s.description},
          {"users", s.users},
          {"items", s.items},
          {"interactions", s.interactions},
          {"active_users", s.active_users},
          {"active_items", s.active_items},
          {"density", s.density},
          {"rating_histogram", h},
          {"time_min", s.time_min},
          {"time_max", s.time_max},
          {"top20_item_share", s.top20_share},
          {"memory_bytes", s.memory_bytes}};
}

}  // namespace siamrec
