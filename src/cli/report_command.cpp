#include <boost/program_options.hpp>
#include <fstream>
#include <iostream>

#include "cli/subcommands.hpp"
#include "report/compare.hpp"
#include "report/writer.hpp"

namespace ellm::cli {
namespace po = boost::program_options;
using nlohmann::json;

namespace {

constexpr int kSupportedSchema = 2;

// DIR/report.json, checked enough to render: a clear message names the file otherwise.
json read_report(const std::string& dir) {
  const std::string file = dir + "/report.json";
  std::ifstream in(file);
  if (!in) throw std::runtime_error(file + ": cannot read (is " + dir + " an efficientllm output directory?)");
  json report = json::parse(in, nullptr, false);
  if (report.is_discarded() || !report.is_object()) throw std::runtime_error(file + ": not a JSON object");
  if (report.value("schema_version", 0) != kSupportedSchema) {
    throw std::runtime_error(file + ": /schema_version: must be " + std::to_string(kSupportedSchema) + ", got " +
                             (report.contains("schema_version") ? report["schema_version"].dump() : "nothing"));
  }
  return report;
}

}  // namespace

int report_main(int argc, char** argv) {
  po::options_description desc("efficientllm report DIR... [options]");
  std::string format;
  desc.add_options()("help,h", "show this help")("format", po::value(&format)->default_value("md"),
                                                 "md, csv or json");
  po::options_description hidden;
  hidden.add_options()("dir", po::value<std::vector<std::string>>());
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description positional;
  positional.add("dir", -1);
  po::variables_map vm;
  std::vector<std::pair<std::string, json>> reports;
  try {
    po::store(po::command_line_parser(argc - 1, argv + 1).options(all).positional(positional).run(), vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    if (format != "md" && format != "csv" && format != "json") {
      throw po::error("--format: must be one of \"md\", \"csv\", \"json\"; got \"" + format + "\"");
    }
    if (!vm.count("dir")) throw po::error("missing the report directory argument (DIR...)");
  } catch (const po::error& e) {
    std::cerr << "efficientllm report: " << e.what() << "\n" << desc << "\n";
    return kExitBadInput;
  }
  try {
    for (const std::string& dir : vm["dir"].as<std::vector<std::string>>()) reports.emplace_back(dir, read_report(dir));
  } catch (const std::exception& e) {
    std::cerr << "efficientllm report: " << e.what() << "\n";
    return kExitBadInput;
  }

  if (reports.size() == 1) {
    const json& r = reports.front().second;
    std::cout << (format == "md" ? render_markdown(r) : format == "csv" ? render_csv(r) : r.dump(2) + "\n");
    return 0;
  }
  const json comparison = compare_reports(reports);
  if (format == "json") {
    std::cout << comparison.dump(2) << "\n";
  } else {
    const Table t = comparison_table(comparison, format == "csv");
    std::cout << (format == "csv" ? t.csv() : "# efficientllm reports side by side\n\n" + t.markdown() + "\n" +
                                                  comparison["comparison"]["note"].get<std::string>() + "\n");
  }
  return 0;
}

}  // namespace ellm::cli
