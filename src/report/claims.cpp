#include "report/claims.hpp"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace ellm {
namespace {

using nlohmann::json;
constexpr int kMinimumSeeds = 3;

[[noreturn]] void bad(const std::string& file, const std::string& pointer, const std::string& what) {
  throw std::runtime_error(file + ": " + pointer + ": " + what);
}

void require_string(const json& c, const std::string& key, const std::string& file, const std::string& at) {
  if (!c.contains(key) || !c[key].is_string() || c[key].get<std::string>().empty())
    bad(file, at + "/" + key, "a non-empty string is required");
}

void check_claim(const json& c, const std::string& file, const std::string& at) {
  if (!c.is_object()) bad(file, at, "each claim is an object");
  for (const char* key : {"id", "source", "statement", "paper", "job", "metric", "a", "compare"})
    require_string(c, key, file, at);
  if (c.contains("note") && !c["note"].is_string()) bad(file, at + "/note", "a string (why scale or hardware explains a difference)");
  if (c["metric"].get<std::string>()[0] != '/') bad(file, at + "/metric", "a JSON pointer into a run, such as \"/quality/val_perplexity_final\"");
  const std::string cmp = c["compare"];
  if (cmp != "<" && cmp != ">" && cmp != "ratio_in") bad(file, at + "/compare", "one of \"<\", \">\", \"ratio_in\"");
  const json* b = c.contains("b") ? &c["b"] : nullptr;
  const bool b_ok = b && ((b->is_string() && !b->get<std::string>().empty()) ||
                          (cmp != "ratio_in" && b->is_array() && !b->empty()));
  if (b_ok && b->is_array())
    for (const json& name : *b)
      if (!name.is_string()) bad(file, at + "/b", "group names are strings");
  if (!b_ok) bad(file, at + "/b", cmp == "ratio_in" ? "one group name (a string)" : "a group name or a non-empty list of them");
  if (cmp == "ratio_in") {
    const json* r = c.contains("range") ? &c["range"] : nullptr;
    if (!r || !r->is_array() || r->size() != 2 || !(*r)[0].is_number() || !(*r)[1].is_number() || (*r)[0] > (*r)[1])
      bad(file, at + "/range", "[low, high] with low <= high");
  }
}

// Group name of a run: its name without the "seed=S" part; and the seed ("" when none).
std::pair<std::string, std::string> group_and_seed(const std::string& name) {
  std::string group, seed, part;
  std::istringstream parts(name);
  while (std::getline(parts, part, ',')) {
    if (part.rfind("seed=", 0) == 0) seed = part.substr(5);
    else group += (group.empty() ? "" : ",") + part;
  }
  return {group, seed};
}

// group → seed → metric value
using Groups = std::map<std::string, std::map<std::string, double>>;

Groups collect(const json& report, const std::string& metric) {
  Groups groups;
  if (!report.contains("runs") || !report["runs"].is_array()) return groups;
  const json::json_pointer ptr(metric);
  for (const json& run : report["runs"]) {
    if (!run.is_object() || !run.contains("name") || !run["name"].is_string()) continue;
    if (!run.contains(ptr) || !run[ptr].is_number()) continue;  // a diverged run has no final metric
    const auto [group, seed] = group_and_seed(run["name"].get<std::string>());
    groups[group][seed] = run[ptr].get<double>();
  }
  return groups;
}

std::vector<double> values(const std::map<std::string, double>& by_seed) {
  std::vector<double> v;
  for (const auto& [seed, x] : by_seed) v.push_back(x);
  return v;
}

std::string fmt(double x) {
  char s[32];
  std::snprintf(s, sizeof s, "%.4g", x);
  return s;
}

std::string describe(const std::string& group, const stats::SeedSummary& s) {
  return group + ": " + fmt(s.mean) + " ± " + (s.n > 1 ? fmt(s.ci_high - s.mean) : "?") + " (n=" + std::to_string(s.n) + ")";
}

void judge_directional(const json& c, const Groups& groups, ClaimResult& r) {
  const std::string a = c["a"];
  const int sign = c["compare"] == "<" ? -1 : 1;
  std::vector<std::string> others;
  if (c["b"].is_string()) others.push_back(c["b"]);
  else
    for (const json& name : c["b"]) others.push_back(name);
  const auto missing = [&](const std::string& g) { return !groups.count(g) || int(groups.at(g).size()) < kMinimumSeeds; };
  for (const std::string& g : others)
    if (missing(g) || missing(a)) {
      r.reason = "fewer than " + std::to_string(kMinimumSeeds) + " seeds of " + (missing(a) ? a : g);
      return;
    }
  const std::vector<double> va = values(groups.at(a));
  r.ours = describe(a, stats::summarize_seeds(va));
  bool all_hold = true, any_fails = false;
  for (const std::string& g : others) {
    const std::vector<double> vb = values(groups.at(g));
    const stats::WelchTest w = stats::welch_t_test(va, vb);
    const stats::Verdict v = stats::directional_verdict(w, sign);
    r.ours += "; " + describe(g, stats::summarize_seeds(vb));
    r.reason += (r.reason.empty() ? "" : "; ") + std::string("vs ") + g + ": Welch p = " + fmt(w.p_two_sided);
    all_hold = all_hold && v == stats::Verdict::Holds;
    any_fails = any_fails || v == stats::Verdict::DoesNotHold;
  }
  r.verdict = any_fails ? stats::Verdict::DoesNotHold : all_hold ? stats::Verdict::Holds : stats::Verdict::Inconclusive;
}

void judge_ratio(const json& c, const Groups& groups, ClaimResult& r) {
  const std::string a = c["a"], b = c["b"];
  std::vector<double> ratios;
  if (groups.count(a) && groups.count(b))
    for (const auto& [seed, x] : groups.at(a))
      if (groups.at(b).count(seed) && groups.at(b).at(seed) != 0) ratios.push_back(x / groups.at(b).at(seed));
  if (int(ratios.size()) < kMinimumSeeds) {
    r.reason = "fewer than " + std::to_string(kMinimumSeeds) + " seeds with both " + a + " and " + b;
    return;
  }
  const stats::SeedSummary s = stats::summarize_seeds(ratios);
  r.ours = describe(a + " / " + b, s);
  r.verdict = stats::range_verdict(s, c["range"][0].get<double>(), c["range"][1].get<double>());
  r.reason = "95 % interval [" + fmt(s.ci_low) + ", " + fmt(s.ci_high) + "] against [" + fmt(c["range"][0]) + ", " +
             fmt(c["range"][1]) + "]";
}

std::string escape_cell(std::string s) {
  for (std::size_t p = 0; (p = s.find('|', p)) != std::string::npos; p += 2) s.replace(p, 1, "\\|");
  return s;
}

}  // namespace

json load_claims(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot be read");
  json doc = json::parse(in, nullptr, false);
  if (doc.is_discarded()) throw std::runtime_error(path + ": not valid JSON");
  if (!doc.is_object() || !doc.contains("claims") || !doc["claims"].is_array() || doc["claims"].empty())
    bad(path, "/claims", "a non-empty array of claims is required");
  for (std::size_t i = 0; i < doc["claims"].size(); i++) check_claim(doc["claims"][i], path, "/claims/" + std::to_string(i));
  return doc;
}

std::vector<ClaimResult> judge_claims(const json& claims, const std::vector<std::pair<std::string, json>>& reports) {
  std::vector<ClaimResult> results;
  for (const json& c : claims["claims"]) {
    ClaimResult r{c["id"], c["source"], c["statement"], c["paper"], c["metric"], "", "", stats::Verdict::Inconclusive, ""};
    r.comparison = c["a"].get<std::string>() + " " + c["compare"].get<std::string>() + " " + (c["b"].is_string() ? c["b"].get<std::string>() : c["b"].dump());
    const json* report = nullptr;
    for (const auto& [job, rep] : reports)
      if (job == c["job"]) report = &rep;
    if (!report) r.reason = "not run (no report of " + c["job"].get<std::string>() + ")";
    else if (c["compare"] == "ratio_in") judge_ratio(c, collect(*report, r.metric), r);
    else judge_directional(c, collect(*report, r.metric), r);
    if (c.contains("note")) r.reason += (r.reason.empty() ? "" : ". ") + c["note"].get<std::string>();
    results.push_back(std::move(r));
  }
  return results;
}

std::string claim_table_markdown(const std::vector<ClaimResult>& results) {
  std::string md = "| claim | source | paper | comparison (metric) | ours: mean ± 95 % half-width | verdict | why |\n"
                   "|---|---|---|---|---|---|---|\n";
  for (const ClaimResult& r : results)
    md += "| " + escape_cell(r.statement) + " | " + escape_cell(r.source) + " | " + escape_cell(r.paper) + " | " +
          escape_cell(r.comparison) + " (`" + r.metric + "`) | " + escape_cell(r.ours) + " | **" +
          stats::verdict_name(r.verdict) + "** | " + escape_cell(r.reason) + " |\n";
  return md;
}

json claim_table_json(const std::vector<ClaimResult>& results) {
  json out = json::array();
  for (const ClaimResult& r : results)
    out.push_back({{"id", r.id}, {"source", r.source}, {"statement", r.statement}, {"paper", r.paper},
                   {"metric", r.metric}, {"comparison", r.comparison}, {"ours", r.ours},
                   {"verdict", stats::verdict_name(r.verdict)}, {"reason", r.reason}});
  return out;
}

}  // namespace ellm
