#include "predict/sweep.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace ellm::predict {

std::vector<std::pair<Collective, Sample>> read_sweep(const std::string& file) {
  const nlohmann::json j = read_json_file(file);
  if (!j.contains("ranks") || !j["ranks"].is_number_integer() || j["ranks"].get<int>() < 2) {
    throw std::runtime_error(file + ": /ranks: must be an integer ≥ 2 (a sweep of bench/bench_collectives under mpirun)");
  }
  if (!j.contains("samples") || !j["samples"].is_array()) throw std::runtime_error(file + ": /samples: must be an array");
  std::vector<std::pair<Collective, Sample>> out;
  const int ranks = j["ranks"].get<int>();
  for (std::size_t i = 0; i < j["samples"].size(); i++) {
    const nlohmann::json& s = j["samples"][i];
    const std::string at = file + ": /samples/" + std::to_string(i);
    try {
      const double bytes = s.at("bytes").get<double>(), seconds = s.at("seconds").get<double>();
      if (!(bytes > 0) || !(seconds > 0)) throw std::invalid_argument("bytes and seconds must be > 0");
      out.push_back({parse_collective(s.at("collective").get<std::string>()), {ranks, bytes, seconds}});
    } catch (const std::exception& e) {
      throw std::runtime_error(at + ": " + e.what() + " (fields: collective, bytes, seconds)");
    }
  }
  return out;
}

LinkClass fit_link(const std::vector<std::pair<Collective, Sample>>& samples, const std::string& source,
                   const std::vector<double>& band_edges) {
  std::vector<double> below = band_edges;
  below.push_back(std::numeric_limits<double>::infinity());
  LinkClass link;
  link.source = source;
  for (Collective c : kCollectives) {
    double from = 0;
    for (double to : below) {
      std::vector<Sample> mine;
      for (const auto& [sc, s] : samples) {
        if (sc == c && s.bytes >= from && s.bytes < to) mine.push_back(s);
      }
      try {
        link.per_collective[std::size_t(c)].push_back({to, fit_alpha_beta(c, mine)});
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string(e.what()) + " (band from " + std::to_string(std::size_t(from)) +
                                    " bytes" + (std::isinf(to) ? std::string() : " below " + std::to_string(std::size_t(to))) + ")");
      }
      from = to;
    }
  }
  return link;
}

}  // namespace ellm::predict
