#include <sys/wait.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/command_line.hpp"
#include "cli/subcommands.hpp"
#include "report/claims.hpp"
#include "report/compare.hpp"
#include "report/reader.hpp"
#include "report/writer.hpp"

namespace ellm::cli {
namespace po = boost::program_options;
using nlohmann::json;

namespace {

// DIR/report.json, checked enough to render: a clear message names the file otherwise.
json read_report(const std::string& dir) {
  const std::string file = dir + "/report.json";
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(file + ": cannot read (is " + dir + " an efficientllm output directory?)");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_report(text.str(), file);
}

// The scaling study's table and plot are drawn by scripts/plot_scaling.py with Debian's
// python3-matplotlib (a plotting library is not the benchmark's substance). Run without a shell,
// so directory names are passed as they are.
int plot_scaling(const std::string& mode, const std::string& prefix, const std::vector<std::string>& dirs) {
  std::vector<std::string> args = {"/usr/bin/python3", std::string(ELLM_SCRIPTS_DIR) + "/plot_scaling.py",
                                   "--mode", mode, "--out", prefix};
  args.insert(args.end(), dirs.begin(), dirs.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    execv(argv[0], argv.data());
    std::perror("efficientllm report: cannot run /usr/bin/python3 (install python3-matplotlib: scripts/setup.sh)");
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0) {
    std::perror("efficientllm report: cannot start the plot");
    return kExitFailure;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : kExitFailure;
}

// The claim table of `claims_file` over the reports, each known by its job file's name.
int print_claim_table(const std::string& claims_file, const std::vector<std::pair<std::string, json>>& reports,
                      const std::string& format) {
  std::vector<std::pair<std::string, json>> by_job;
  json doc;
  try {
    doc = load_claims(claims_file);
    for (const auto& [dir, report] : reports) {
      const json::json_pointer file("/job/file");
      if (!report.contains(file) || !report[file].is_string())
        throw std::runtime_error(dir + "/report.json: /job/file: the job file's name is missing");
      by_job.emplace_back(std::filesystem::path(report[file].get<std::string>()).filename().string(), report);
    }
  } catch (const std::exception& e) {
    std::cerr << "efficientllm report: " << e.what() << "\n";
    return kExitBadInput;
  }
  std::vector<ClaimResult> results;
  try {
    results = judge_claims(doc, by_job);
  } catch (const std::exception& e) {
    std::cerr << "efficientllm report: " << claims_file << ": " << e.what() << "\n";
    return kExitBadInput;
  }
  if (format == "json") std::cout << claim_table_json(results).dump(2) << "\n";
  else std::cout << claim_table_markdown(results);
  return 0;
}

}  // namespace

int report_main(int argc, char** argv) {
  po::options_description desc("efficientllm report DIR... [options]");
  std::string format;
  std::string scaling, out, claims;
  desc.add_options()("help,h", "show this help")("format", po::value(&format)->default_value("md"),
                                                 "md, csv or json")(
      "scaling", po::value(&scaling),
      "strong or weak: combine the reports of a scaling study (one DIR per size) into one table "
      "and one plot of tokens/s, latency, communication share and efficiency against ideal")(
      "out", po::value(&out), "with --scaling: output prefix, writes PREFIX.md and PREFIX.png")(
      "claims", po::value(&claims),
      "a claims file (jobs/paper/claims.json): judge each of the paper's claims on the reports of the "
      "study jobs (one DIR per job, >= 3 seeds each) and print the claim table (md or json)");
  po::variables_map vm;
  std::vector<std::pair<std::string, json>> reports;
  try {
    vm = parse_command_line(argc, argv, desc, "dir", -1);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    if (format != "md" && format != "csv" && format != "json") {
      throw po::error("--format: must be one of \"md\", \"csv\", \"json\"; got \"" + format + "\"");
    }
    if (!vm.count("dir")) throw po::error("missing the report directory argument (DIR...)");
    if (vm.count("scaling") && scaling != "strong" && scaling != "weak") {
      throw po::error("--scaling: must be \"strong\" or \"weak\"; got \"" + scaling + "\"");
    }
    if (vm.count("scaling") != vm.count("out")) throw po::error("--scaling and --out go together");
    if (vm.count("claims") && format == "csv") throw po::error("--claims: the claim table is md or json");
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

  if (!scaling.empty()) return plot_scaling(scaling, out, vm["dir"].as<std::vector<std::string>>());
  if (!claims.empty()) return print_claim_table(claims, reports, format);
  if (reports.size() == 1) {
    try {
      std::cout << render_report(reports.front().second, format, reports.front().first + "/report.json");
    } catch (const std::exception& e) {
      std::cerr << "efficientllm report: " << e.what() << "\n";
      return kExitBadInput;
    }
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
