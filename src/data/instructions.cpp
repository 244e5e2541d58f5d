#include "data/instructions.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "data/json_error.hpp"

namespace ellm {
namespace {

using nlohmann::json;

struct Message {
  std::string role, content;
};

// The template: every message is "<|role|>\n" then its content; a user or system message ends
// with "\n", an assistant message with the tokenizer's end-of-sequence id. Only an assistant's
// content and its end-of-sequence id are learned.
void render(const std::vector<Message>& messages, const Tokenizer& tok, InstructionSample& out) {
  const auto add = [&](const std::string& text, bool learned) {
    tok.encode(text, out.tokens);
    out.learned.resize(out.tokens.size(), learned ? 1 : 0);
  };
  for (const Message& m : messages) {
    add("<|" + m.role + "|>\n", false);
    if (m.role == "assistant") {
      add(m.content, true);
      out.tokens.push_back(tok.eos_id());
      out.learned.push_back(1);
    } else {
      add(m.content + "\n", false);
    }
  }
}

// One line's messages; `fail` throws with the line's message.
template <class Fail>
std::vector<Message> parse_line(const json& j, const Fail& fail) {
  const char* forms = "{\"prompt\": \"...\", \"response\": \"...\"} or {\"messages\": [{\"role\": ..., \"content\": ...}, ...]}";
  if (!j.is_object()) fail(std::string("must be an object, ") + forms + "; got " + j.type_name());
  for (const auto& [key, value] : j.items()) {
    if (key != "prompt" && key != "response" && key != "messages")
      fail("unknown key \"" + key + "\" (allowed: prompt, response, messages)");
  }
  const auto text_of = [&](const json& v, const std::string& what) {
    if (!v.is_string()) fail(what + " must be a string, got " + v.type_name());
    return v.get<std::string>();
  };
  std::vector<Message> messages;
  if (j.contains("messages")) {
    if (j.contains("prompt") || j.contains("response"))
      fail("has both \"messages\" and \"prompt\"/\"response\"; use one form");
    const json& list = j["messages"];
    if (!list.is_array() || list.empty()) fail("\"messages\" must be a non-empty array");
    for (std::size_t i = 0; i < list.size(); i++) {
      const std::string at = "messages[" + std::to_string(i) + "]";
      const json& m = list[i];
      if (!m.is_object() || !m.contains("role") || !m.contains("content") || m.size() != 2)
        fail(at + " must be {\"role\": ..., \"content\": ...}");
      const std::string role = text_of(m["role"], at + ".role");
      if (role != "system" && role != "user" && role != "assistant")
        fail(at + ".role must be \"system\", \"user\" or \"assistant\", got \"" + role + "\"");
      messages.push_back({role, text_of(m["content"], at + ".content")});
    }
    if (std::none_of(messages.begin(), messages.end(), [](const Message& m) {
          return m.role == "assistant" && !m.content.empty();
        }))
      fail("no non-empty \"assistant\" message: a sample needs response tokens to learn from");
    return messages;
  }
  for (const char* key : {"prompt", "response"}) {
    if (!j.contains(key)) fail(std::string("missing key \"") + key + "\"; a sample is " + forms);
  }
  messages.push_back({"user", text_of(j["prompt"], "\"prompt\"")});
  messages.push_back({"assistant", text_of(j["response"], "\"response\"")});
  if (messages.back().content.empty())
    fail("\"response\" is empty: a sample needs response tokens to learn from");
  return messages;
}

}  // namespace

std::vector<InstructionSample> read_instructions(const std::filesystem::path& path,
                                                 const Tokenizer& tokenizer,
                                                 const std::string& source,
                                                 const std::string& pointer) {
  const std::string name = "instruction file \"" + path.string() + "\"";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw JobError(source, pointer, name + ": cannot read: " + std::strerror(errno));
  std::vector<InstructionSample> samples;
  std::string line;
  for (int number = 1; std::getline(in, line); number++) {
    const auto fail = [&](const std::string& message) -> void {
      throw JobError(source, pointer, name + ": line " + std::to_string(number) + ": " + message);
    };
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999999
      fail("not valid JSON (" + json_error_text(e) + ")");
    }
    InstructionSample sample;
    sample.line = number;
    render(parse_line(j, fail), tokenizer, sample);
    samples.push_back(std::move(sample));
  }
  if (samples.empty()) throw JobError(source, pointer, name + ": holds no samples");
  return samples;
}

}  // namespace ellm
