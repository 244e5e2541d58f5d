#include "predict/sweep.hpp"

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

LinkClass fit_link(const std::vector<std::pair<Collective, Sample>>& samples, const std::string& source) {
  LinkClass link;
  link.source = source;
  for (Collective c : kCollectives) {
    std::vector<Sample> mine;
    for (const auto& [sc, s] : samples) {
      if (sc == c) mine.push_back(s);
    }
    link.per_collective[std::size_t(c)] = fit_alpha_beta(c, mine);
  }
  return link;
}

}  // namespace ellm::predict
