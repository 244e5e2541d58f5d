// `efficientllm bench-infer JOB.json`: the inference benchmark (docs/INFERENCE.md). For every
// run of the job and every weight format in its inference.formats: llama-bench's prompt
// processing and token generation tests, the sampled memory (AMU) and energy (AEC), the weight
// bytes, the quality against fp32 by llama.cpp's perplexity methodology, and MCR in its measured
// and bit-ratio forms. Writes DIR/inference.json and DIR/inference.md (the root). Under mpirun,
// tensor-parallel over parallel.tp ranks, each rank's figures gathered into the one report.
#include <boost/program_options.hpp>
#include <malloc.h>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli/command_line.hpp"
#include "cli/inference_ranks.hpp"
#include "cli/node_setup.hpp"
#include "cli/model_input_errors.hpp"
#include "cli/subcommands.hpp"
#include "data/corpus.hpp"
#include "efficientllm/config.hpp"
#include "infer/bench.hpp"
#include "infer/decoder.hpp"
#include "infer/linear_store.hpp"
#include "infer/load_model.hpp"
#include "infer/quality.hpp"
#include "io/hf.hpp"
#include "io/safetensors.hpp"
#include "kernels/gemm.hpp"
#include "metrics/stats.hpp"
#include "quant/dispatch.hpp"
#include "report/aggregate.hpp"
#include "mpi/comm.hpp"
#include "report/provenance.hpp"
#include "util/rng.hpp"

namespace ellm::cli {
namespace po = boost::program_options;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

po::options_description bench_options() {
  po::options_description desc("efficientllm bench-infer JOB.json [options]");
  desc.add_options()("help,h", "show this help")(
      "out,o", po::value<std::string>(), "output directory (default: results/<job>-infer-<UTC time>)")(
      "from-run", po::value<std::string>(),
      "serve each run's model as `efficientllm run` saved it there: DIR/checkpoints/<run name> (its model.init_from)")(
      "set", po::value<std::vector<std::string>>()->composing(),
      "override a job field for every run, e.g. --set inference.formats=int4 (repeatable)")(
      "grid", po::value<std::vector<std::string>>()->composing(),
      "make a field a grid axis, e.g. --grid training.seed=1,2,3 (as for `efficientllm run`; repeatable)");
  return desc;
}

// inference.formats: a comma-separated list of quant format names.
std::vector<quant::Format> parse_formats(const RunConfig& run, const std::string& job_file) {
  std::vector<quant::Format> formats;
  std::stringstream list(run.inference.formats);
  for (std::string name; std::getline(list, name, ',');) {
    const auto f = quant::parse_format(name);
    if (!f) throw JobError(job_file, "/inference/formats", "unknown weight format \"" + name + "\" (allowed: fp32, bf16, fp16, int8, int4, comma-separated)");
    formats.push_back(*f);
  }
  if (formats.empty()) throw JobError(job_file, "/inference/formats", "lists no format");
  return formats;
}

void check_fits(const RunConfig& run, const std::string& job_file) {
  const InferenceConfig& ic = run.inference;
  const int T = run.model.seq_len;
  if (ic.prompt_tokens > T)
    throw JobError(job_file, "/inference/prompt_tokens", std::to_string(ic.prompt_tokens) + " exceeds the context, /model/seq_len = " + std::to_string(T));
  if (ic.gen_tokens > T)
    throw JobError(job_file, "/inference/gen_tokens", std::to_string(ic.gen_tokens) + " exceeds the context, /model/seq_len = " + std::to_string(T));
}

json mean_std(const std::vector<double>& xs) {
  double mean = 0, var = 0;
  for (double x : xs) mean += x / xs.size();
  for (double x : xs) var += (x - mean) * (x - mean) / std::max<std::size_t>(1, xs.size() - 1);
  return {{"mean", mean}, {"std", std::sqrt(var)}, {"n", xs.size()}};
}

std::vector<double> rates(const std::vector<double>& seconds, double tokens) {
  std::vector<double> r;
  for (double s : seconds) r.push_back(tokens / s);
  return r;
}

// How a format's weights are made from the fp32 ones (docs/QUANTIZATION.md, "Rounding").
const char* quantization_method(quant::Format f) {
  switch (f) {
    case quant::Format::F32: return "none (the fp32 weights)";
    case quant::Format::BF16:
    case quant::Format::F16: return "round-to-nearest-even";
    default: return "round-to-nearest (ggml's block scale, no error-minimising search)";
  }
}

// The CPU's SIMD flags that choose a quantized-kernel path, as /proc/cpuinfo lists them.
json cpu_simd_flags() {
  static const char* relevant[] = {"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16"};
  std::ifstream in("/proc/cpuinfo");
  std::string flags;
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("flags")) {
      flags = " " + line.substr(line.find(':') + 1) + " ";
      break;
    }
  json present = json::array();
  for (const char* f : relevant)
    if (flags.find(" " + std::string(f) + " ") != std::string::npos) present.push_back(f);
  return present;
}

// Which quantized-kernel path this process runs and why (quant/dispatch.hpp).
json kernel_record() {
  const char* forced = std::getenv("ELLM_QUANT_ISA");
  return {{"isa", quant::isa_name(quant::active_isa())},
          {"isa_source", forced && *forced ? "ELLM_QUANT_ISA" : "the widest path this CPU supports"},
          {"supported", quant::supported_isas()},
          {"cpu_simd_flags", cpu_simd_flags()}};
}

// The validation tokens the quality windows are cut from: from a start drawn from training.seed
// (the same for every format of a run), so seeds score different text; from the beginning when
// the stream holds no more than the windows.
std::vector<int> quality_tokens(const std::vector<int>& val, const RunConfig& run) {
  const std::size_t need = std::size_t(run.inference.quality_windows) * run.model.seq_len;
  if (val.size() <= need) return val;
  Rng rng(derive_seed(run.training.seed, 7));
  const std::size_t start = std::size_t(rng.below(std::uint64_t(val.size() - need + 1)));
  return {val.begin() + std::ptrdiff_t(start), val.end()};
}

// One format's record, as this rank measured it (its shard's weight bytes, its sampled memory).
json bench_format(NodeContext& node, const RunConfig& run, Decoder<float>& dec, mpi::Comm& tp_comm, quant::Format f,
                  const std::vector<LinearShape>& layers, const Corpus& corpus) {
  const InferenceConfig& ic = run.inference;
  std::unique_ptr<QuantizedLinears> store;
  std::size_t served_elems = 0;
  for (const LinearShape& l : layers) served_elems += std::size_t(l.out) * l.in;
  // fp32 is the arena's weights through OpenBLAS; the others their quantized copies.
  if (f != quant::Format::F32) store = std::make_unique<QuantizedLinears>(f, layers, dec.params(), dec.param_layout());
  const std::size_t served_bytes = store ? store->bytes() : served_elems * sizeof(float);
  // Everything else stays fp32 in the arena; a tied LM head's table (this rank's vocabulary
  // slice) is still the embedding.
  std::size_t kept = dec.num_params() - served_elems;
  if (run.model.tie_embeddings) kept += std::size_t(run.model.vocab_size / tp_comm.size()) * run.model.d_model;
  const std::size_t weight_bytes = served_bytes + kept * sizeof(float);

  dec.serve_linears(store.get());
  // The timed tests hold the format's footprint: the served layers' fp32 pages go back to the
  // system (AMU then reflects the format), and come back from the run's weights afterwards, for
  // the quality reference and the next format's quantization.
  const std::size_t released = store ? dec.release_fp32_linears(layers) : 0;
  const std::unique_ptr<Sampler> sampler = start_sampling(node, run);
  const double tp0 = tp_comm.stats().seconds;
  // The sampled figures' window (docs/METRICS.md, "Windows"): the benchmark, its warm-up
  // repetitions included; the quality comparison below is outside it.
  if (sampler) sampler->enter(Window::steps);
  const BenchTimes t = bench_decoder(dec, {ic.prompt_tokens, ic.gen_tokens, ic.repetitions, ic.warmup, run.training.seed});
  if (sampler) sampler->enter(Window::finish);
  const json sampled = sampling_record(node, sampler.get(), run);
  const int B = dec.batch();
  const Summary latency = summarize(t.token_seconds);
  json rec = {{"format", quant::format_name(f)},
              {"bits_per_weight", quant::bits_per_weight(f)},
              {"quantization", quantization_method(f)},
              {"kernel", f == quant::Format::F32 ? std::string("fp32 sgemm (BLAS)") : std::string(quant::isa_name(quant::active_isa()))},
              {"weight_bytes", {{"total", weight_bytes}, {"linear_layers", served_bytes}, {"fp32_rest", kept * sizeof(float)}}},
              {"pp", {{"tokens", ic.prompt_tokens}, {"tokens_per_s", mean_std(rates(t.pp_seconds, double(B) * ic.prompt_tokens))}}},
              {"tg", {{"tokens", ic.gen_tokens}, {"tokens_per_s", mean_std(rates(t.tg_seconds, double(B) * ic.gen_tokens))}}},
              {"time_to_first_token_s", mean_std(t.pp_seconds)},
              {"token_latency_s", {{"p50", latency.p50}, {"p95", latency.p95}, {"mean", latency.mean}}},
              {"tp_comm_seconds", tp_comm.stats().seconds - tp0},
              {"fp32_released_bytes", released},
              {"sampling", sampled}};
  if (released > 0) load_run_weights(run, dec);
  if (ic.quality_windows > 0) {
    const Quality q = compare_quality(dec, nullptr, store.get(), quality_tokens(corpus.val.tokens, run), ic.quality_windows);
    rec["quality"] = {{"ppl_fp32", q.ppl_reference}, {"ppl", q.ppl}, {"ppl_delta", q.ppl_delta()},
                      {"kl_divergence", q.kl}, {"top1_agreement", q.top1_agreement},
                      {"scored_tokens", q.scored}, {"windows", q.windows}};
  }
  dec.serve_linears(nullptr);
  store.reset();
  malloc_trim(0);  // the copies' freed pages back to the system: the next format's RSS starts clean
  return rec;
}

// The one record of a format at the root: every rank ran the same tests in lockstep, so the
// timings and quality are the root's; the weight bytes are summed over the ranks' shards (what
// the group holds), and each rank's bytes, tensor-parallel time and sampled memory are listed and
// summarised across ranks (min / mean / max / sum, as the training report does).
json gather_ranks(mpi::Comm& world, json mine) {
  const json compact = {{"rank", world.rank()}, {"host", world.host()}, {"weight_bytes", mine["weight_bytes"]},
                        {"tp_comm_seconds", mine["tp_comm_seconds"]},
                        {"amu", mine["sampling"].is_null() ? json(nullptr) : mine["sampling"]["amu"]},
                        {"rss_peak_bytes", mine["sampling"].is_null() ? json(nullptr) : mine["sampling"]["rss_peak_bytes"]}};
  const std::vector<std::string> all = world.gather_strings(compact.dump());
  if (!world.is_root()) return nullptr;
  json ranks = json::array();
  for (const std::string& r : all) ranks.push_back(json::parse(r));
  const auto across = [&ranks](const char* key) {
    std::vector<double> v;
    for (const json& r : ranks)
      if (!r[key].is_null()) v.push_back(r[key].get<double>());
    return across_ranks(v);
  };
  for (const char* part : {"total", "linear_layers", "fp32_rest"}) {
    std::uint64_t sum = 0;
    for (const json& r : ranks) sum += r["weight_bytes"][part].get<std::uint64_t>();
    mine["weight_bytes"][part] = sum;
  }
  mine["ranks"] = ranks;
  mine["across_ranks"] = {{"amu", across("amu")}, {"rss_peak_bytes", across("rss_peak_bytes")},
                          {"tp_comm_seconds", across("tp_comm_seconds")}};
  return mine;
}

// MCR against the fp32 record: (size_fp32 / size) × (quality / quality_fp32), quality = 1/ppl;
// measured bytes, and the paper's bit-width ratio (32 / bits per weight).
void add_mcr(json& rec, const json& fp32) {
  if (!rec.contains("quality")) return;
  const double perf = rec["quality"]["ppl_fp32"].get<double>() / rec["quality"]["ppl"].get<double>();
  rec["mcr"] = {{"measured_bytes", fp32["weight_bytes"]["total"].get<double>() / rec["weight_bytes"]["total"].get<double>() * perf},
                {"bit_ratio", 32.0 / rec["bits_per_weight"].get<double>() * perf}};
}

std::string markdown(const json& report) {
  std::ostringstream md;
  for (const json& run : report["runs"]) {
    const json& k = run["kernels"];
    md << "## " << run["name"].get<std::string>() << "\n\n"
       << "Quantized kernels: `" << k["isa"].get<std::string>() << "` (" << k["isa_source"].get<std::string>()
       << "; supported: " << k["supported"].get<std::string>() << "; CPU flags: " << k["cpu_simd_flags"].dump()
       << "), tensor-parallel ranks: " << run["tensor_parallel"].get<int>()
       << ". Integer formats quantized by round-to-nearest (ggml Q8_0 / Q4_0), bf16/fp16 by round-to-nearest-even.\n\n"
       << "| format | weight MiB | pp tok/s | tg tok/s (IT) | TTFT ms | token p50 / p95 ms | ppl | Δppl | KL | top-1 | MCR bytes / bits |\n"
       << "|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (const json& r : run["formats"]) {
      char line[512];
      const bool q = r.contains("quality"), m = r.contains("mcr");
      std::snprintf(line, sizeof line, "| %s | %.2f | %.1f ± %.1f | %.1f ± %.1f | %.1f | %.2f / %.2f | %s | %s | %s | %s | %s |\n",
                    r["format"].get<std::string>().c_str(), r["weight_bytes"]["total"].get<double>() / 1048576.0,
                    r["pp"]["tokens_per_s"]["mean"].get<double>(), r["pp"]["tokens_per_s"]["std"].get<double>(),
                    r["tg"]["tokens_per_s"]["mean"].get<double>(), r["tg"]["tokens_per_s"]["std"].get<double>(),
                    1e3 * r["time_to_first_token_s"]["mean"].get<double>(), 1e3 * r["token_latency_s"]["p50"].get<double>(),
                    1e3 * r["token_latency_s"]["p95"].get<double>(),
                    q ? std::to_string(r["quality"]["ppl"].get<double>()).c_str() : "–",
                    q ? std::to_string(r["quality"]["ppl_delta"].get<double>()).c_str() : "–",
                    q ? std::to_string(r["quality"]["kl_divergence"].get<double>()).c_str() : "–",
                    q ? std::to_string(r["quality"]["top1_agreement"].get<double>()).c_str() : "–",
                    m ? (std::to_string(r["mcr"]["measured_bytes"].get<double>()) + " / " + std::to_string(r["mcr"]["bit_ratio"].get<double>())).c_str() : "–");
      md << line;
    }
    md << "\n";
  }
  return md.str();
}

// --from-run DIR: each run starts from DIR/checkpoints/<its name>, the checkpoint `efficientllm
// run` saved for it (a job of several runs, e.g. seeds, then serves each its own trained model).
void serve_from_run_dir(Job& job, const std::string& dir) {
  if (dir.empty()) return;
  for (RunConfig& run : job.runs) {
    const fs::path ckpt = fs::path(dir) / "checkpoints" / run.name;
    if (!fs::exists(ckpt)) throw JobError(job.file.string(), "", "--from-run: no checkpoint of run \"" + run.name + "\" at " + ckpt.string() + " (did efficientllm run save it? checkpoint.save)");
    run.model.init_from = ckpt.string();
    run.as_json["model"]["init_from"] = ckpt.string();
  }
}

int bench(const std::string& job_file, const std::vector<std::string>& sets, const std::vector<std::string>& grids,
          std::string out, const std::string& from_run, mpi::Comm& comm) {
  std::vector<Override> overrides;
  for (const std::string& s : sets) overrides.push_back(parse_override(s));
  for (const std::string& g : grids) overrides.push_back(parse_grid_override(g));
  Job job = load_job(job_file, overrides);
  serve_from_run_dir(job, from_run);
  for (const RunConfig& run : job.runs) {
    parse_formats(run, job.file.string());
    check_fits(run, job.file.string());
    check_inference_layout(run, comm.size(), job.file.string());
  }
  const bool root = comm.is_root();
  NodeContext node = setup_node(comm);
  json report = {{"job", job.name}, {"file", job.file.string()}, {"system", system_info()}, {"node", node_info(node)}, {"runs", json::array()}};
  for (const RunConfig& run : job.runs) {
    const Corpus corpus = load_corpus(run.data, run.model.seq_len, run.model.vocab_size, job.file.string());
    InferenceRanks ranks(comm, run);
    Decoder<float> dec(run.model, run.inference.batch, ranks.tp);
    load_run_weights(run, dec);
    const json placement = place_rank(node, run.topology.policy);  // the kernels' threads too
    const std::vector<LinearShape> layers = dec.linear_layers();
    json formats = json::array();
    json fp32;
    for (const quant::Format f : parse_formats(run, job.file.string())) {
      if (root) std::fprintf(stderr, "efficientllm bench-infer: %s %s\n", run.name.c_str(), quant::format_name(f));
      formats.push_back(gather_ranks(comm, bench_format(node, run, dec, ranks.grid.tp, f, layers, corpus)));
      if (f == quant::Format::F32) fp32 = formats.back();
    }
    if (!fp32.is_null())
      for (json& r : formats) add_mcr(r, fp32);
    report["runs"].push_back({{"name", run.name}, {"config", run.as_json}, {"placement", placement},
                              {"tensor_parallel", comm.size()},
                              {"kernels", kernel_record()},
                              {"estimates", "AEC is an estimate where the sampling record's energy source says so; MCR's bit-ratio form counts fp32 as 32 bits"},
                              {"formats", formats}});
  }
  if (!root) return 0;
  if (out.empty()) out = "results/" + job.name + "-infer-" + utc_timestamp("%Y%m%d-%H%M%S");
  fs::create_directories(out);
  std::ofstream(fs::path(out) / "inference.json") << report.dump(2) << "\n";
  const std::string md = markdown(report);
  std::ofstream(fs::path(out) / "inference.md") << "# " << job.name << ": inference\n\n" << md;
  std::cout << md << "report: " << (fs::path(out) / "inference.json").string() << " (and inference.md)\n";
  return 0;
}

}  // namespace

int bench_infer_main(int argc, char** argv) {
  const po::options_description desc = bench_options();
  po::variables_map vm;
  try {
    vm = parse_command_line(argc, argv, desc, "job", 1);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    if (!vm.count("job")) throw po::error("missing the job file argument (JOB.json)");
  } catch (const po::error& e) {
    std::cerr << "efficientllm bench-infer: " << e.what() << "\n" << desc << "\n";
    return kExitBadInput;
  }
  mpi::Session session(&argc, &argv);
  mpi::Comm comm = mpi::Comm::world();
  return exit_on_model_input_error("bench-infer", comm.is_root(), [&] {
    const auto strings = [&](const char* key) {
      return vm.count(key) ? vm[key].as<std::vector<std::string>>() : std::vector<std::string>{};
    };
    return bench(vm["job"].as<std::string>(), strings("set"), strings("grid"),
                 vm.count("out") ? vm["out"].as<std::string>() : "", vm.count("from-run") ? vm["from-run"].as<std::string>() : "", comm);
  });
}

}  // namespace ellm::cli
