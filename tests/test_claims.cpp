// The claim table (src/report/claims.hpp) on a synthetic result set: verdicts from seeds,
// pairing by seed for ratios, too few seeds, a study that did not run, and bad claims files.
#include "report/claims.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using nlohmann::json;
using namespace ellm;

namespace {

json run(const std::string& name, double ppl, double rss) {
  return {{"name", name}, {"quality", {{"val_perplexity_final", ppl}}}, {"memory", {{"rss", rss}}}};
}

// moe: lower perplexity than dense on every seed, ~1.7x the memory; "tiny" has two seeds only.
json synthetic_report() {
  json runs = json::array();
  const double dense[] = {10.0, 10.4, 10.2}, moe[] = {9.1, 9.4, 9.2}, rss[] = {100, 104, 98};
  for (int s = 0; s < 3; s++) {
    runs.push_back(run("mlp=dense,seed=" + std::to_string(s + 1), dense[s], rss[s]));
    runs.push_back(run("mlp=moe,seed=" + std::to_string(s + 1), moe[s], rss[s] * (1.68 + 0.01 * s)));
  }
  runs.push_back(run("mlp=tiny,seed=1", 20, 1));
  runs.push_back(run("mlp=tiny,seed=2", 21, 1));
  return {{"runs", runs}};
}

json claim(std::string id, std::string a, std::string cmp, json b, std::string metric = "/quality/val_perplexity_final") {
  return {{"id", id}, {"source", "Table 5"}, {"statement", id}, {"paper", "-"}, {"job", "moe.json"},
          {"metric", metric}, {"a", a}, {"compare", cmp}, {"b", b}};
}

std::string write_claims(const json& doc) {
  const auto path = std::filesystem::temp_directory_path() / ("ellm_claims_" + std::to_string(::getpid()) + ".json");
  std::ofstream(path) << doc.dump();
  return path.string();
}

std::string load_error(const json& doc) {
  const std::string path = write_claims(doc);
  try {
    load_claims(path);
  } catch (const std::runtime_error& e) {
    std::filesystem::remove(path);
    return e.what();
  }
  std::filesystem::remove(path);
  return "";
}

}  // namespace

TEST(Claims, VerdictsFromSeeds) {
  json ratio = claim("memory", "mlp=moe", "ratio_in", "mlp=dense", "/memory/rss");
  ratio["range"] = {1.6, 1.8};
  json wrong_range = ratio;
  wrong_range["id"] = "memory-wrong";
  wrong_range["range"] = {3.0, 4.0};
  json other_job = claim("elsewhere", "a", "<", "b");
  other_job["job"] = "peft.json";
  const json doc = {{"claims",
                     {claim("better", "mlp=moe", "<", "mlp=dense"), claim("worse", "mlp=moe", ">", "mlp=dense"),
                      claim("vs-list", "mlp=moe", "<", json::array({"mlp=dense", "mlp=tiny"})), ratio, wrong_range,
                      other_job}}};
  const auto results = judge_claims(doc, {{"moe.json", synthetic_report()}});
  ASSERT_EQ(results.size(), 6u);
  EXPECT_EQ(results[0].verdict, stats::Verdict::Holds) << results[0].reason;
  EXPECT_EQ(results[1].verdict, stats::Verdict::DoesNotHold);
  EXPECT_EQ(results[2].verdict, stats::Verdict::Inconclusive);  // tiny has 2 seeds
  EXPECT_NE(results[2].reason.find("fewer than 3 seeds of mlp=tiny"), std::string::npos) << results[2].reason;
  EXPECT_EQ(results[3].verdict, stats::Verdict::Holds) << results[3].reason;
  EXPECT_EQ(results[4].verdict, stats::Verdict::DoesNotHold);
  EXPECT_EQ(results[5].verdict, stats::Verdict::Inconclusive);
  EXPECT_NE(results[5].reason.find("not run"), std::string::npos);
  const std::string md = claim_table_markdown(results);
  EXPECT_NE(md.find("**holds**"), std::string::npos);
  EXPECT_NE(md.find("mlp=moe: 9.233"), std::string::npos) << md;
  EXPECT_EQ(claim_table_json(results)[0]["verdict"], "holds");
}

TEST(Claims, BadClaimsFilesNameTheField) {
  EXPECT_NE(load_error({{"claims", json::array()}}).find("/claims: a non-empty array"), std::string::npos);
  json c = claim("x", "a", "<=", "b");
  EXPECT_NE(load_error({{"claims", {c}}}).find("/claims/0/compare: one of"), std::string::npos);
  c = claim("x", "a", "ratio_in", "b");
  EXPECT_NE(load_error({{"claims", {c}}}).find("/claims/0/range: [low, high]"), std::string::npos);
  c = claim("x", "a", "<", "b", "quality");
  EXPECT_NE(load_error({{"claims", {c}}}).find("/claims/0/metric: a JSON pointer"), std::string::npos);
  c = claim("x", "a", "<", "b");
  c.erase("source");
  EXPECT_NE(load_error({{"claims", {c}}}).find("/claims/0/source: a non-empty string"), std::string::npos);
}

TEST(Claims, ThePapersClaimsFileLoadsAndNamesExistingStudies) {
  const std::string dir = std::string(ELLM_SOURCE_DIR) + "/jobs/paper/";
  const json doc = load_claims(dir + "claims.json");
  for (const json& c : doc["claims"])
    EXPECT_TRUE(std::filesystem::exists(dir + c["job"].get<std::string>())) << c["id"] << ": " << c["job"];
}
