#include "cli/commands.hpp"

#include <unistd.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "build_info.hpp"
#include "cli/disk_space.hpp"
#include "cli/estimate_command.hpp"
#include "cli/node_setup.hpp"
#include "cli/subcommands.hpp"
#include "data/corpus.hpp"
#include "efficientllm/config.hpp"
#include "io/peft.hpp"
#include "kernels/gemm.hpp"
#include "metrics/flops.hpp"
#include "metrics/memory.hpp"
#include "model/plan.hpp"
#include "mpi/comm.hpp"
#include "report/progress.hpp"
#include "report/provenance.hpp"
#include "report/reader.hpp"
#include "report/run_report.hpp"
#include "report/writer.hpp"
#include "train/checkpoint.hpp"
#include "train/interrupt.hpp"
#include "train/trainer.hpp"

namespace ellm::cli {
namespace po = boost::program_options;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* kUsage =
    "usage: efficientllm <command> [options]\n"
    "\n"
    "commands:\n"
    "  run JOB.json       train every run of the job and write its report (launch with mpirun)\n"
    "  validate JOB.json  check a job file and its corpus without running anything\n"
    "  estimate JOB.json  parameters, FLOPs, memory per rank and an estimated step time, before running\n"
    "  topo               the node's topology and where each rank runs (under mpirun: the cluster)\n"
    "  report DIR...      re-render a report, or put several side by side (--format md|csv|json)\n"
    "  tokenizer train    train a SentencePiece model on a corpus (--vocab-size N --out FILE.model)\n"
    "  tokenize TEXT      write a pre-tokenized corpus (--out FILE.tok [--tokenizer bytes|FILE.model])\n"
    "  generate JOB.json  continue a prompt with the job's model, streaming tokens (--prompt TEXT)\n"
    "  bench-infer JOB.json  inference benchmark at each weight format of the job's inference section\n"
    "  predict JOB.json   predicted step time and efficiency up to 10,000 ranks (docs/SCALING.md)\n"
    "\n"
    "  efficientllm <command> --help   options of a command\n"
    "  efficientllm --version          version and the git commit it was built from\n";

struct Options {
  std::string job;
  std::string out;
  std::string resume;
  std::vector<std::string> sets, grids;
  bool help = false;
  bool continue_job = false;
  bool force_memory = false;  // run: start runs whose memory estimate exceeds what a rank has
  EstimateOptions estimate;   // estimate: --ranks, --json, --rate
};

po::options_description command_options(const std::string& command) {
  po::options_description desc("efficientllm " + command + " JOB.json [options]");
  desc.add_options()("help,h", "show this help")(
      "set", po::value<std::vector<std::string>>()->composing(),
      "override a job field for every run, e.g. --set training.steps=50 (repeatable)")(
      "grid", po::value<std::vector<std::string>>()->composing(),
      "make a field a grid axis, e.g. --grid training.seed=1,2,3: every run once per value "
      "(replaces the job's axis of that field; repeatable)");
  if (command == "run") {
    desc.add_options()("out,o", po::value<std::string>(),
                       "output directory (default: results/<job>-<UTC time>)")(
        "resume", po::value<std::string>(),
        "continue a one-run job from a checkpoint: a step-*.safetensors file, or a directory of them "
        "(the latest is taken); see docs/CHECKPOINTS.md")(
        "continue", po::bool_switch(),
        "take up --out, a directory holding results of this job: its finished runs are kept and "
        "not run again, the others run (an interrupted one from its start)")(
        "force-memory", po::bool_switch(),
        "start every run even when its estimated memory per rank exceeds the memory available to a "
        "rank (docs/ESTIMATE.md)");
  }
  if (command == "estimate") {
    desc.add_options()("ranks", po::value<int>(),
                       "world size to estimate for: parallel.dp = N / parallel.tp in every run (default: "
                       "each run's dp × tp)")("json", po::bool_switch(), "print JSON (docs/ESTIMATE.md)")(
        "rate", po::value<double>(),
        "FLOP/s of one rank for the step-time estimate, in GFLOP/s (default: this machine's theoretical "
        "peak shared by the ranks)")("measure-peak", po::bool_switch(),
                                     "the rate from a calibration sgemm on this machine's cores (about 2 s)");
  }
  return desc;
}

// Parses the options of `command`; a bad flag throws po::error with Boost's own wording.
Options parse_options(const std::string& command, int argc, char** argv) {
  po::options_description desc = command_options(command);
  po::options_description hidden;
  hidden.add_options()("job", po::value<std::string>());
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description positional;
  positional.add("job", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
  po::notify(vm);
  Options o;
  o.help = vm.count("help") > 0;
  if (vm.count("job")) o.job = vm["job"].as<std::string>();
  if (vm.count("out")) o.out = vm["out"].as<std::string>();
  if (vm.count("resume")) o.resume = vm["resume"].as<std::string>();
  if (vm.count("set")) o.sets = vm["set"].as<std::vector<std::string>>();
  if (vm.count("grid")) o.grids = vm["grid"].as<std::vector<std::string>>();
  o.continue_job = vm.count("continue") && vm["continue"].as<bool>();
  o.force_memory = vm.count("force-memory") && vm["force-memory"].as<bool>();
  o.estimate.json = vm.count("json") && vm["json"].as<bool>();
  if (vm.count("ranks")) o.estimate.ranks = vm["ranks"].as<int>();
  if (vm.count("rate")) o.estimate.rate_gflops = vm["rate"].as<double>();
  o.estimate.measure_peak = vm.count("measure-peak") && vm["measure-peak"].as<bool>();
  if (vm.count("rate") && o.estimate.measure_peak) throw po::error("--rate and --measure-peak: choose one rate");
  if (vm.count("ranks") && o.estimate.ranks < 1) throw po::error("--ranks must be at least 1");
  if (vm.count("rate") && !(o.estimate.rate_gflops > 0)) throw po::error("--rate must be a positive GFLOP/s");
  if (!o.help && o.job.empty()) throw po::error("missing the job file argument (JOB.json)");
  if (o.continue_job && o.out.empty()) throw po::error("--continue needs --out DIR, the directory to take up");
  if (o.continue_job && !o.resume.empty())
    throw po::error("--continue and --resume: --resume already takes up --out (one interrupted run)");
  return o;
}

Job load(const Options& o) {
  std::vector<Override> overrides;
  for (const std::string& s : o.sets) overrides.push_back(parse_override(s));
  for (const std::string& g : o.grids) overrides.push_back(parse_grid_override(g));
  return load_job(o.job, overrides);
}

int usage_error(const std::string& command, const std::string& message) {
  std::cerr << "efficientllm " << command << ": " << message << "\n"
            << command_options(command) << "\n";
  return kExitBadInput;
}

// Reads and checks every run's data (throws JobError); the corpora are not kept, their sizes are
// (corpus_bytes: what each run will hold).
std::vector<std::size_t> load_corpora(const Job& job) {
  std::vector<std::size_t> bytes;
  for (const RunConfig& run : job.runs)
    bytes.push_back(corpus_bytes(load_corpus(run.data, run.model.seq_len, run.model.vocab_size, job.file.string())));
  return bytes;
}

// model.init_from: every run's starting checkpoint fits its model; finetune.adapter_from: its
// adapter fits the model and the job's finetune section (throws st::FileError).
void check_initial_weights(const Job& job) {
  for (const RunConfig& run : job.runs) {
    if (!run.model.init_from.empty())
      check_init_from(st::Reader::open(resolve_checkpoint(run.model.init_from)), run);
    if (!run.model.finetune.adapter_from.empty()) peft::check_adapter(run.model.finetune.adapter_from, run.model);
  }
}

int validate(const Options& o) {
  const Job job = load(o);
  load_corpora(job);
  check_initial_weights(job);
  std::cout << job.file.string() << ": OK, " << job.runs.size() << " run(s)\n";
  for (const RunConfig& run : job.runs) {
    const ParamCounts params = count_params(make_param_layout(run.model));
    std::printf("  %-24s %8.2fM params  %6d steps  batch %d×%d  dp=%d\n", run.name.c_str(),
                params.total / 1e6, run.training.steps, run.training.batch_size,
                run.model.seq_len, run.parallel.dp);
  }
  return 0;
}

// --ranks N: every run at world size N, parallel.dp = N / parallel.tp, checked by the validator as
// --set parallel.dp would be (the job is loaded again with that override for each run).
std::vector<RunConfig> runs_on(const Options& o, const Job& job, int world) {
  std::vector<RunConfig> runs;
  for (std::size_t i = 0; i < job.runs.size(); i++) {
    const RunConfig& run = job.runs[i];
    if (world % run.parallel.tp != 0)
      throw JobError(job.file.string(), "", "--ranks " + std::to_string(world) + ": run \"" + run.name +
                                                "\" has parallel.tp = " + std::to_string(run.parallel.tp) +
                                                ", which does not divide it");
    Options at = o;
    at.sets.push_back("parallel.dp=" + std::to_string(world / run.parallel.tp));
    runs.push_back(load(at).runs.at(i));
  }
  return runs;
}

// The estimate is printed by the root only (a run's ranks are counted from the job, not launched).
int estimate(const Options& o) {
  mpi::Comm comm = mpi::Comm::world();
  Job job = load(o);
  if (o.estimate.ranks > 0) job.runs = runs_on(o, job, o.estimate.ranks);
  const std::vector<std::size_t> corpora = load_corpora(job);
  if (comm.is_root()) print_estimate(job, corpora, o.estimate, double(resident_bytes()));
  return 0;
}

// Runs `fn` on every rank. Bad input found on any rank ends the job on every rank with the
// message of the lowest failing rank: no rank is left waiting in a collective.
bool agree(mpi::Comm& comm, const std::function<void()>& fn) {
  std::string error;
  try {
    fn();
  } catch (const JobError& e) {
    error = e.what();
  } catch (const st::FileError& e) {  // a checkpoint to resume or start from
    error = e.what();
  }
  if (comm.allreduce_max(error.empty() ? 0.0 : 1.0) == 0.0) return true;
  const std::vector<std::string> errors = comm.gather_strings(error);
  for (const std::string& e : errors) {
    if (!e.empty()) {
      std::cerr << "efficientllm: " << e << "\n";
      break;
    }
  }
  return false;
}

// OPENBLAS_NUM_THREADS sizes every rank's kernel threads (kernels/gemm.hpp): a value that is not a
// thread count is bad input like a job file's, refused before anything runs.
void check_thread_environment() {
  try {
    kernels::environment_kernel_threads();
  } catch (const std::invalid_argument& e) {
    throw JobError("environment", "", e.what());
  }
}

// Each run's dp × tp grid must use exactly the ranks that were launched.
void check_layout(const Job& job, int world) {
  for (const RunConfig& run : job.runs) {
    const int dp = run.parallel.dp, tp = run.parallel.tp;
    if (dp * tp == world) continue;
    const bool tp_fits = world % tp == 0;  // suggest keeping tp when the world allows it
    throw JobError(job.file.string(), "",
                   "run \"" + run.name + "\" needs parallel.dp × parallel.tp = " +
                       std::to_string(dp) + " × " + std::to_string(tp) + " = " +
                       std::to_string(dp * tp) + " MPI ranks but the job was launched on " +
                       std::to_string(world) + "; launch with mpirun -np " +
                       std::to_string(dp * tp) + " or pass --set parallel.dp=" +
                       std::to_string(tp_fits ? world / tp : world) +
                       (tp_fits ? "" : " --set parallel.tp=1"));
  }
}

// --continue: the runs an earlier invocation finished, by name, each checked to have run with the
// configuration this job gives it now (a changed --set or job file would mix two studies).
std::set<std::string> finished_runs(const Job& job, const ReportWriter& writer) {
  std::set<std::string> names;
  for (const RunConfig& run : job.runs) {
    if (!writer.kept_runs().contains(run.name)) continue;
    const json& earlier = writer.kept_runs()[run.name]["config"];
    const json patch = json::diff(earlier, run.as_json);
    if (!patch.empty()) {
      const std::string field = patch[0].value("path", "");
      throw JobError(job.file.string(), field,
                     "run \"" + run.name + "\" finished in " + writer.dir().string() + " with " +
                         (earlier.contains(json::json_pointer(field)) ? earlier[json::json_pointer(field)].dump() : "no value") +
                         " here and would now run with " +
                         (run.as_json.contains(json::json_pointer(field)) ? run.as_json[json::json_pointer(field)].dump() : "no value") +
                         "; --continue takes up the same configuration (or choose another --out)");
    }
    names.insert(run.name);
  }
  return names;
}

std::string default_out_dir(const Job& job) {
  return "results/" + job.name + "-" + utc_timestamp("%Y%m%d-%H%M%S");
}

// The job's header: what every run shares. `nodes` is each node's node_info (with its lowest
// rank's world rank as "node").
json report_header(const Job& job, const std::vector<std::string>& argv, const std::vector<std::string>& hosts,
                   const json& nodes) {
  json unique_hosts = json::array();
  for (const std::string& h : hosts) {
    if (std::find(unique_hosts.begin(), unique_hosts.end(), h) == unique_hosts.end()) unique_hosts.push_back(h);
  }
  return {{"schema_version", kReportSchemaVersion},
          {"job", {{"name", job.name}, {"description", job.description}, {"file", job.file.string()}}},
          {"provenance", provenance(argv)},
          {"system", system_info()},
          {"world", {{"ranks", hosts.size()}, {"hosts", unique_hosts}, {"rank_hosts", hosts}}},
          {"topology", {{"nodes", nodes}}}};
}

// Every node's node_info at the root, in node order; the root also warns about oversubscription
// on the console (the reports say it too).
json gather_nodes(mpi::Comm& comm, const NodeContext& node) {
  json info = node_info(node);
  if (!info.is_null()) info["node"] = comm.rank();
  json nodes = json::array();
  for (const std::string& text : comm.gather_strings(info.is_null() ? "" : info.dump())) {
    if (text.empty()) continue;
    nodes.push_back(json::parse(text));
    const json& n = nodes.back();
    if (n["ranks_on_node"].get<int>() > n["topology"]["pus"].get<int>()) {
      std::cerr << "efficientllm: warning: host " << n["host"].get<std::string>() << " runs "
                << n["ranks_on_node"].get<int>() << " ranks on " << n["topology"]["pus"].get<int>()
                << " hardware threads (oversubscribed): ranks share cores, and their timings show it\n";
    }
  }
  return nodes;
}

// --resume: the checkpoint, checked against the job's only run (on every rank: each reads it).
std::shared_ptr<st::Reader> open_resume(const Options& o, const Job& job, ResumePoint& point) {
  if (o.resume.empty()) return nullptr;
  if (job.runs.size() != 1)
    throw JobError(job.file.string(), "", "--resume continues one run, and this job has " +
                                              std::to_string(job.runs.size()) +
                                              "; write a job file for the run to resume");
  // The checksum is verified as the run loads the file (read once); the rest is checked here.
  auto ckpt = std::make_shared<st::Reader>(st::Reader::open(resolve_checkpoint(o.resume), st::Checksum::verify_on_load));
  point = check_resume(*ckpt, job.runs[0]);
  return ckpt;
}

int run(const Options& o, int argc, char** argv) {
  mpi::Comm comm = mpi::Comm::world();
  catch_stop_signals();
  Job job;
  // Every data file (and a checkpoint to resume from) is read and checked before anything is
  // written (each run reads its corpus again when it starts, so only one is held at a time).
  std::shared_ptr<st::Reader> resume;
  ResumePoint resume_point;
  std::vector<std::size_t> corpora;
  if (!agree(comm, [&] {
        check_thread_environment();
        job = load(o);
        check_layout(job, comm.size());
        corpora = load_corpora(job);
        check_initial_weights(job);
        resume = open_resume(o, job, resume_point);
      }))
    return kExitBadInput;
  if (comm.is_root() && resume) {
    std::cerr << "efficientllm: resuming from " << resume->path().string() << " at step " << resume_point.step
              << "\n";
    for (const std::string& note : resume_point.notes)
      std::cerr << "efficientllm: warning: resuming with a setting the checkpoint's run did not have (" << note
                << "): the run will not reproduce an uninterrupted one\n";
  }

  NodeContext node = setup_node(comm);
  // Every run's memory estimate on this rank, its runtime part this process's memory now (before
  // any model): a run that will not fit is refused before any starts, on every rank (agree).
  std::vector<RankMemory> estimates;
  std::string forced;  // --force-memory: the first run this rank's memory would refuse
  if (!agree(comm, [&] {
        for (std::size_t i = 0; i < job.runs.size(); i++) {
          estimates.push_back(rank_estimate(job.runs[i], comm.size(), comm.rank(), corpora[i], double(resident_bytes())));
          const std::string problem = memory_problem(job.runs[i], comm.rank(), estimates.back(), node.available);
          if (!problem.empty() && !o.force_memory) throw JobError(job.file.string(), "", problem);
          if (forced.empty()) forced = problem;
        }
      }))
    return kExitBadInput;
  for (const std::string& problem : comm.gather_strings(forced)) {  // the root's list: one warning
    if (problem.empty()) continue;
    std::cerr << "efficientllm: warning: " << problem << " (--force-memory: running it)\n";
    break;
  }
  const std::string host = comm.host();
  const std::vector<std::string> hosts = comm.gather_strings(host);
  const json nodes = gather_nodes(comm, node);
  std::optional<ReportWriter> writer;
  std::set<std::string> finished;  // --continue: runs to skip (known on the root, then everywhere)
  std::string setup_error;
  if (comm.is_root()) {
    try {
      const Reopen reopen = !o.resume.empty() ? Reopen::interrupted_run
                            : o.continue_job    ? Reopen::finished_runs
                                                : Reopen::never;
      writer.emplace(o.out.empty() ? default_out_dir(job) : o.out,
                     report_header(job, std::vector<std::string>(argv, argv + argc), hosts, nodes), reopen);
      finished = finished_runs(job, *writer);
    } catch (const JobError& e) {
      setup_error = e.what();
    } catch (const std::exception& e) {
      setup_error = e.what();
    }
  }
  if (comm.is_root() && setup_error.empty()) {
    setup_error = disk_space_problem(job, writer->dir());  // before any run
    if (!setup_error.empty()) writer->discard_if_empty();
  }
  if (comm.allreduce_max(setup_error.empty() ? 0.0 : 1.0) != 0.0) {
    if (comm.is_root()) std::cerr << "efficientllm: " << setup_error << "\n";
    return kExitBadInput;
  }

  // Every rank needs the directory (all take part in a save; the root writes) and the runs to skip.
  const std::string out_dir = comm.broadcast_string(comm.is_root() ? writer->dir().string() : "");
  finished = json::parse(comm.broadcast_string(comm.is_root() ? json(finished).dump() : "")).get<std::set<std::string>>();
  Progress progress(stderr, isatty(fileno(stderr)) != 0);
  for (std::size_t i = 0; i < job.runs.size(); i++) {
    const RunConfig& rc = job.runs[i];
    if (i > 0 && comm.allreduce_max(double(stop_signal())) > 0) {  // arrived as the last run ended
      if (comm.is_root())
        std::cerr << "efficientllm: stopped by a signal before run " << i + 1 << " of " << job.runs.size() << "\n";
      return kExitInterrupted;
    }
    if (finished.count(rc.name)) {
      if (comm.is_root())
        std::cerr << "[run " << i + 1 << "/" << job.runs.size() << " " << rc.name << "] finished earlier in "
                  << out_dir << ": kept, not run again\n";
      continue;
    }
    Corpus corpus;
    if (!agree(comm, [&] { corpus = load_corpus(rc.data, rc.model.seq_len, rc.model.vocab_size, job.file.string()); })) {
      return kExitBadInput;
    }
    if (comm.is_root()) progress.begin_run(int(i), int(job.runs.size()), rc);
    const bool root = comm.is_root();
    RankContext ctx{comm.rank(), host, node.leader, node.node.rank(), node.node.size(), place_rank(node, rc.topology.policy),
                    nullptr, node_info(node), 0, to_json(estimates[i])};
    const std::unique_ptr<Sampler> sampler = start_sampling(node, rc);
    CheckpointSetup ckpt;
    const fs::path ckpt_dir = rc.checkpoint.dir.empty() ? fs::path(out_dir) / "checkpoints" : fs::path(rc.checkpoint.dir);
    if (rc.checkpoint.save) ckpt.save_dir = ckpt_dir;
    ckpt.interrupt_dir = ckpt_dir;
    if (resume) {
      ckpt.resume = std::move(resume);  // the one run takes it
      ckpt.resume_step = resume_point.step;
    }
    RunRecord rec;
    try {
      rec = train_run(
          rc, corpus, comm, [&](int step, const StepSample& s) { if (root) progress.step(step, s); },
          [&](const EvalSample& e) { if (root) progress.eval(e); },
          [&](std::uint64_t bytes) { if (sampler) sampler->set_tracked_bytes(bytes); },
          [&](Window w) { if (sampler) sampler->enter(w); }, ckpt);
    } catch (const st::FileError& e) {  // a checkpoint's checksum, verified as it loaded
      if (root) {
        std::cerr << "efficientllm: " << e.what() << "\n";
        writer->discard_if_empty();
      }
      return kExitBadInput;
    }
    if (root && !rec.diverged.is_null())
      std::cerr << "efficientllm: warning: run \"" << rc.name << "\" diverged at step " << rec.diverged["step"]
                << " (loss " << rec.diverged["loss"] << ", gradient norm " << rec.diverged["grad_norm"]
                << "): it stopped there; the job goes on with its next run\n";
    ctx.sampling = sampling_record(node, sampler.get(), rc);
    ctx.rss_hwm_bytes = peak_resident_bytes();
    const std::vector<std::string> records = comm.gather_strings(rank_record(rec, ctx).dump());
    if (root) {
      progress.end_run(rec.wall_seconds);
      std::vector<json> ranks;
      for (const std::string& r : records) ranks.push_back(json::parse(r));
      writer->add_run(build_run_report(rc, int(i), rec, ranks));
    }
    if (!rec.interrupted.is_null()) {
      if (root)
        std::cerr << "efficientllm: interrupted by " << rec.interrupted["signal"].get<std::string>() << " after step "
                  << rec.interrupted["step"] << " of run \"" << rc.name << "\"; checkpoint "
                  << rec.interrupted["checkpoint"].get<std::string>() << "; continue with: efficientllm run "
                  << job.file.string() << " --resume " << rec.interrupted["checkpoint"].get<std::string>()
                  << " --out " << writer->dir().string() << "\n";
      return kExitInterrupted;
    }
  }
  if (comm.is_root()) {
    std::cout << "\n" << render_summary_table(writer->report()) << "\nreport: "
              << (writer->dir() / "report.md").string() << " (and report.json, report.csv, runs.jsonl)\n";
  }
  return 0;
}

int dispatch(const std::string& command, int argc, char** argv) {
  Options o;
  try {
    o = parse_options(command, argc - 1, argv + 1);
  } catch (const po::error& e) {
    return usage_error(command, e.what());
  } catch (const JobError& e) {  // a malformed --set
    return usage_error(command, e.what());
  }
  if (o.help) {
    std::cout << command_options(command) << "\n";
    return 0;
  }
  if (command == "estimate") {
    mpi::Session session(&argc, &argv);
    try {
      return estimate(o);
    } catch (const JobError& e) {
      std::cerr << "efficientllm: " << e.what() << "\n";
      return kExitBadInput;
    }
  }
  if (command == "validate") {
    try {
      return validate(o);
    } catch (const JobError& e) {
      std::cerr << "efficientllm: " << e.what() << "\n";
      return kExitBadInput;
    } catch (const st::FileError& e) {  // model.init_from
      std::cerr << "efficientllm: " << e.what() << "\n";
      return kExitBadInput;
    }
  }
  mpi::Session session(&argc, &argv);
  try {
    return run(o, argc, argv);
  } catch (const std::exception& e) {
    // A failure on one rank would leave the others blocked in a collective: end them all.
    mpi::abort_all(std::string("efficientllm: error: ") + e.what() + "\n", kExitFailure);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return kExitBadInput;
  }
  const std::string first = argv[1];
  if (first == "--help" || first == "-h" || first == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (first == "--version") {
    std::cout << "efficientllm " << build_info::version << " (commit " << build_info::git_commit
              << (build_info::git_dirty ? ", dirty" : "") << ")\n";
    return 0;
  }
  if (first == "run" || first == "validate" || first == "estimate") return dispatch(first, argc, argv);
  if (first == "topo") return topo_main(argc, argv);
  if (first == "report") return report_main(argc, argv);
  if (first == "tokenizer") return tokenizer_main(argc, argv);
  if (first == "tokenize") return tokenize_main(argc, argv);
  if (first == "generate") return generate_main(argc, argv);
  if (first == "bench-infer") return bench_infer_main(argc, argv);
  if (first == "predict") return predict_main(argc, argv);
  std::cerr << "efficientllm: unknown command '" << first
            << "' (allowed: run, validate, estimate, topo, report, tokenizer, tokenize, generate, bench-infer, predict)\n" << kUsage;
  return kExitBadInput;
}

}  // namespace ellm::cli
