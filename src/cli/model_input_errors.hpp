// The errors a command that loads a model from a job can meet before any work — a bad job file,
// checkpoint or Hugging Face directory, or a model the inference engine cannot serve (these name
// the field or tensor) — each printed once as "efficientllm COMMAND: message", exit code 2. Under
// mpirun every rank meets the same error (they read the same job, files and layout): only the
// one with `print` (the root) says it.
#pragma once
#include <iostream>
#include <stdexcept>

#include "cli/subcommands.hpp"
#include "efficientllm/config.hpp"
#include "io/hf.hpp"
#include "io/safetensors.hpp"

namespace ellm::cli {

// body()'s exit code, or kExitBadInput after printing the error if it throws one of the above.
template <class Body>
int exit_on_model_input_error(const char* command, bool print, Body&& body) {
  const auto bad_input = [command, print](const std::exception& e) {
    if (print) std::cerr << "efficientllm " << command << ": " << e.what() << "\n";
    return kExitBadInput;
  };
  try {
    return body();
  } catch (const JobError& e) {
    return bad_input(e);
  } catch (const st::FileError& e) {
    return bad_input(e);
  } catch (const hf::Error& e) {
    return bad_input(e);
  } catch (const std::invalid_argument& e) {  // a model the decoder cannot serve; a width a format cannot hold
    return bad_input(e);
  }
}

}  // namespace ellm::cli
