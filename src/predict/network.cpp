#include "predict/network.hpp"

#include <algorithm>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <stdexcept>

namespace ellm::predict {
namespace {

[[noreturn]] void bad(const std::string& file, const std::string& pointer, const std::string& what) {
  throw std::runtime_error(file + ": " + pointer + ": " + what);
}

double positive(const nlohmann::json& j, const std::string& key, const std::string& file,
                const std::string& at, bool zero_ok) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number() || it->get<double>() < 0 || (!zero_ok && it->get<double>() == 0)) {
    bad(file, at + "/" + key, zero_ok ? "must be a number ≥ 0" : "must be a number > 0");
  }
  return it->get<double>();
}

AlphaBeta alpha_beta(const nlohmann::json& j, const std::string& file, const std::string& at,
                     std::initializer_list<const char*> allowed) {
  if (!j.is_object()) bad(file, at, "must be an object with alpha_us and bandwidth_gb_s");
  for (const auto& [key, value] : j.items()) {
    if (std::find_if(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; }) == allowed.end()) {
      std::string names;
      for (const char* a : allowed) names += std::string(names.empty() ? "" : ", ") + a;
      bad(file, at + "/" + key, "unknown field (allowed: " + names + ")");
    }
  }
  return {positive(j, "alpha_us", file, at, true) * 1e-6,
          1 / (positive(j, "bandwidth_gb_s", file, at, false) * 1e9)};
}

// A collective's entry: its figures, then its bands (ascending below_bytes) before them.
Bands collective_bands(const nlohmann::json& j, const std::string& file, const std::string& at) {
  const AlphaBeta rest = alpha_beta(j, file, at, {"alpha_us", "bandwidth_gb_s", "bands"});
  Bands bands;
  const nlohmann::json list = j.value("bands", nlohmann::json::array());
  if (!list.is_array()) bad(file, at + "/bands", "must be an array of {below_bytes, alpha_us, bandwidth_gb_s}");
  for (std::size_t i = 0; i < list.size(); i++) {
    const std::string bat = at + "/bands/" + std::to_string(i);
    const AlphaBeta ab = alpha_beta(list[i], file, bat, {"below_bytes", "alpha_us", "bandwidth_gb_s"});
    const double below = positive(list[i], "below_bytes", file, bat, false);
    if (!bands.empty() && below <= bands.back().below_bytes) bad(file, bat + "/below_bytes", "must grow from band to band");
    bands.push_back({below, ab});
  }
  bands.push_back({std::numeric_limits<double>::infinity(), rest});
  return bands;
}

nlohmann::json alpha_beta_json(const AlphaBeta& ab) {
  return {{"alpha_us", ab.alpha_s * 1e6},
          {"bandwidth_gb_s", ab.beta_s_per_byte > 0 ? 1e-9 / ab.beta_s_per_byte : 1e9}};
}

nlohmann::json bands_json(const Bands& bands) {
  nlohmann::json j = alpha_beta_json(bands.back().link);
  for (std::size_t i = 0; i + 1 < bands.size(); i++) {
    nlohmann::json b = alpha_beta_json(bands[i].link);
    b["below_bytes"] = bands[i].below_bytes;
    j["bands"].push_back(b);
  }
  return j;
}

}  // namespace

const char* link_name(Link l) { return l == Link::shared_memory ? "shared_memory" : "interconnect"; }

Network parse_network(const nlohmann::json& j, const std::string& file) {
  if (!j.is_object() || !j.contains("links") || !j["links"].is_object()) {
    bad(file, "/links", "must be an object with shared_memory and interconnect");
  }
  Network n;
  n.description = j.value("description", "");
  for (Link l : {Link::shared_memory, Link::interconnect}) {
    const std::string at = std::string("/links/") + link_name(l);
    if (!j["links"].contains(link_name(l))) bad(file, at, "missing (both link classes are required)");
    const nlohmann::json& lj = j["links"][link_name(l)];
    LinkClass& link = n.links[l];
    const AlphaBeta all = alpha_beta(lj, file, at, {"alpha_us", "bandwidth_gb_s", "collectives", "source"});
    link.per_collective.fill({{std::numeric_limits<double>::infinity(), all}});
    link.source = lj.value("source", "");
    const nlohmann::json collectives = lj.value("collectives", nlohmann::json::object());
    if (!collectives.is_object()) bad(file, at + "/collectives", "must be an object: collective name → {alpha_us, bandwidth_gb_s}");
    for (const auto& [name, cj] : collectives.items()) {
      Collective c;
      try {
        c = parse_collective(name);
      } catch (const std::invalid_argument& e) {
        bad(file, at + "/collectives/" + name, e.what());
      }
      link.per_collective[std::size_t(c)] = collective_bands(cj, file, at + "/collectives/" + name);
    }
  }
  return n;
}

nlohmann::json read_json_file(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error(file + ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(file + ": not JSON: " + e.what());
  }
}

Network load_network(const std::filesystem::path& file) {
  return parse_network(read_json_file(file.string()), file.string());
}

nlohmann::json link_json(const LinkClass& link) {
  nlohmann::json lj = alpha_beta_json(link[Collective::all_reduce].back().link);
  for (Collective c : kCollectives) lj["collectives"][collective_name(c)] = bands_json(link[c]);
  if (!link.source.empty()) lj["source"] = link.source;
  return lj;
}

nlohmann::json network_json(const Network& n) {
  nlohmann::json links;
  for (const auto& [l, link] : n.links) links[link_name(l)] = link_json(link);
  return {{"description", n.description}, {"links", links}};
}

}  // namespace ellm::predict
