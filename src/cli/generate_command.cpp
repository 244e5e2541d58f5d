// `efficientllm generate JOB.json --prompt TEXT`: a person tries a model — the job's run (its
// model section: model.init_from's checkpoint, model.from_hf's directory, or the declared
// initialisers) and its tokenizer (data.tokenizer) — and watches the continuation stream to
// stdout token by token (docs/INFERENCE.md). Under mpirun, tensor-parallel over parallel.tp
// ranks: each holds its shard, all sample the same token from the same gathered logits and seed,
// the root prints.
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/command_line.hpp"
#include "cli/inference_ranks.hpp"
#include "cli/model_input_errors.hpp"
#include "cli/subcommands.hpp"
#include "data/tokenizer.hpp"
#include "efficientllm/config.hpp"
#include "infer/decoder.hpp"
#include "infer/load_model.hpp"
#include "infer/sampling.hpp"
#include "io/hf.hpp"
#include "io/safetensors.hpp"
#include "kernels/gemm.hpp"
#include "mpi/comm.hpp"

namespace ellm::cli {
namespace po = boost::program_options;

namespace {

struct GenerateOptions {
  std::string job, run, prompt;
  std::vector<std::string> sets;
  int max_tokens = 64;
  SamplingConfig sampling;
};

po::options_description generate_options() {
  po::options_description desc("efficientllm generate JOB.json --prompt TEXT [options]");
  desc.add_options()("help,h", "show this help")(
      "prompt", po::value<std::string>(), "the text to continue (required)")(
      "max-tokens", po::value<int>()->default_value(64), "tokens to generate (at most model.seq_len − prompt)")(
      "temperature", po::value<double>()->default_value(0.0), "0: greedy; > 0: sampled from softmax(logits / T)")(
      "top-p", po::value<double>()->default_value(1.0), "nucleus sampling: keep the most probable tokens up to this mass, in (0, 1]")(
      "seed", po::value<std::uint64_t>()->default_value(0), "seed of the sampler")(
      "run", po::value<std::string>(), "which run of the job (default: its first)")(
      "set", po::value<std::vector<std::string>>()->composing(),
      "override a job field, e.g. --set model.init_from=ckpt/ (repeatable)");
  return desc;
}

// Bad input → the message naming the flag or field, exit 2.
class BadInput : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

GenerateOptions parse_generate(int argc, char** argv, bool& help) {
  const po::variables_map vm = parse_command_line(argc, argv, generate_options(), "job", 1);
  help = vm.count("help") > 0;
  GenerateOptions o;
  if (help) return o;
  if (!vm.count("job")) throw BadInput("missing the job file argument (JOB.json)");
  if (!vm.count("prompt")) throw BadInput("--prompt is required");
  o.job = vm["job"].as<std::string>();
  o.prompt = vm["prompt"].as<std::string>();
  if (vm.count("run")) o.run = vm["run"].as<std::string>();
  if (vm.count("set")) o.sets = vm["set"].as<std::vector<std::string>>();
  o.max_tokens = vm["max-tokens"].as<int>();
  o.sampling = {vm["temperature"].as<double>(), vm["top-p"].as<double>(), vm["seed"].as<std::uint64_t>()};
  if (o.max_tokens < 1) throw BadInput("--max-tokens must be at least 1");
  if (o.sampling.temperature < 0) throw BadInput("--temperature must be ≥ 0");
  if (!(o.sampling.top_p > 0 && o.sampling.top_p <= 1)) throw BadInput("--top-p must be in (0, 1]");
  return o;
}

const RunConfig& pick_run(const Job& job, const std::string& name) {
  if (name.empty()) return job.runs.at(0);
  for (const RunConfig& r : job.runs)
    if (r.name == name) return r;
  throw BadInput("--run: the job has no run named \"" + name + "\"");
}

// The prompt's tokens, checked against the model's vocabulary and context.
std::vector<int> encode_prompt(const GenerateOptions& o, const RunConfig& run, const Tokenizer& tok,
                               const std::string& job_file) {
  if (tok.vocab_size() > run.model.vocab_size)
    throw BadInput(job_file + ": /data/tokenizer has " + std::to_string(tok.vocab_size()) +
                   " tokens but /model/vocab_size is " + std::to_string(run.model.vocab_size));
  std::vector<TokenId> ids;
  tok.encode(o.prompt, ids);
  const int n = int(ids.size()), context = run.model.seq_len;
  if (n == 0) throw BadInput("--prompt is empty");
  if (n + o.max_tokens > context)
    throw BadInput("--prompt (" + std::to_string(n) + " tokens) + --max-tokens (" + std::to_string(o.max_tokens) +
                   ") exceed the context, /model/seq_len = " + std::to_string(context) + " in " + job_file);
  return {ids.begin(), ids.end()};
}

int generate(const GenerateOptions& o, mpi::Comm& world) {
  std::vector<Override> overrides;
  for (const std::string& s : o.sets) overrides.push_back(parse_override(s));
  try {
    kernels::set_kernel_threads(kernels::default_kernel_threads());
  } catch (const std::invalid_argument& e) {
    throw BadInput(e.what());
  }
  const Job job = load_job(o.job, overrides);
  const RunConfig& run = pick_run(job, o.run);
  check_inference_layout(run, world.size(), job.file.string());
  const auto tokenizer = make_tokenizer(run.data.tokenizer, job.file.string(), "/data/tokenizer");
  const std::vector<int> prompt = encode_prompt(o, run, *tokenizer, job.file.string());
  InferenceRanks ranks(world, run);
  Decoder<float> dec(run.model, 1, ranks.tp);
  load_run_weights(run, dec);
  const bool root = world.is_root();

  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  const float* logits = dec.forward(prompt.data(), int(prompt.size()), false);
  const auto t1 = Clock::now();
  TokenSampler sampler(o.sampling);
  std::vector<TokenId> generated;
  std::size_t printed = 0;  // bytes of the decoded continuation already written
  if (root) std::cout << o.prompt << std::flush;
  for (int i = 0; i < o.max_tokens; i++) {
    const int next = sampler.next(logits, run.model.vocab_size);
    generated.push_back(next);
    const std::string text = tokenizer->decode(generated);  // whole: pieces join correctly
    if (root && text.size() > printed) std::cout << text.substr(printed) << std::flush;
    printed = std::max(printed, text.size());
    if (!run.data.tokenizer.bytes() && next == tokenizer->eos_id()) break;
    if (i + 1 < o.max_tokens) logits = dec.forward(&next, 1, false);
  }
  const auto t2 = Clock::now();
  const double prefill = std::chrono::duration<double>(t1 - t0).count(),
               decode = std::chrono::duration<double>(t2 - t1).count();
  if (!root) return 0;
  std::cout << "\n";
  std::fprintf(stderr, "efficientllm generate: prompt %zu tokens in %.3f s (%.1f tok/s); %zu tokens generated in %.3f s (%.1f tok/s)\n",
               prompt.size(), prefill, prompt.size() / prefill, generated.size(), decode, generated.size() / decode);
  return 0;
}

}  // namespace

int generate_main(int argc, char** argv) {
  try {
    bool help = false;
    const GenerateOptions o = parse_generate(argc, argv, help);
    if (help) {
      std::cout << generate_options() << "\n";
      return 0;
    }
    mpi::Session session(&argc, &argv);
    mpi::Comm world = mpi::Comm::world();
    try {
      return exit_on_model_input_error("generate", world.is_root(), [&] { return generate(o, world); });
    } catch (const BadInput& e) {  // the same on every rank: the root says it
      if (world.is_root()) std::cerr << "efficientllm generate: " << e.what() << "\n";
      return kExitBadInput;
    }
  } catch (const po::error& e) {
    std::cerr << "efficientllm generate: " << e.what() << "\n" << generate_options() << "\n";
    return kExitBadInput;
  } catch (const BadInput& e) {
    std::cerr << "efficientllm generate: " << e.what() << "\n";
    return kExitBadInput;
  }
}

}  // namespace ellm::cli
