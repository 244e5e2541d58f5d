// A network description: α and β per link class and collective, read from a small JSON file
// (docs/SCALING.md, e.g. predict/networks/*.json):
//   {"description": "...",
//    "links": {"shared_memory": {"alpha_us": 2, "bandwidth_gb_s": 5,
//                                "collectives": {"all_to_all": {"alpha_us": 3, "bandwidth_gb_s": 2,
//                                  "bands": [{"below_bytes": 524288, "alpha_us": 3, "bandwidth_gb_s": 2.5}]}}},
//              "interconnect":  {"alpha_us": 1.5, "bandwidth_gb_s": 12.5, "source": "assumption: ..."}}}
// A link's top-level α and bandwidth hold for every collective it does not list; a collective's
// own figures for the sizes its bands (alpha_beta.hpp) do not cover.
#pragma once
#include <array>
#include <filesystem>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "predict/alpha_beta.hpp"

namespace ellm::predict {

enum class Link { shared_memory, interconnect };  // within a node, between nodes
const char* link_name(Link l);

struct LinkClass {
  std::array<Bands, 4> per_collective;  // indexed by Collective; at least one band each
  std::string source;                   // where the figures come from (fit, assumption)
  const Bands& operator[](Collective c) const { return per_collective[std::size_t(c)]; }
  const AlphaBeta& at(Collective c, double bytes) const { return band_for((*this)[c], bytes); }
};

struct Network {
  std::string description;
  std::map<Link, LinkClass> links;  // both classes
  const LinkClass& link(Link l) const { return links.at(l); }
};

// A JSON file's contents; throws std::runtime_error "FILE: cannot open" / "FILE: not JSON: …".
nlohmann::json read_json_file(const std::string& file);
// Throws std::runtime_error "FILE: /json/pointer: what is allowed" on bad input.
Network parse_network(const nlohmann::json& j, const std::string& file);
Network load_network(const std::filesystem::path& file);
nlohmann::json link_json(const LinkClass& link);  // as in the file, every collective listed
nlohmann::json network_json(const Network& n);

}  // namespace ellm::predict
