// The OpenAI-style HTTP API of `hyft serve`, as plain data: a request body read
// into CompletionRequest (every field checked, errors naming the field), and the
// JSON of responses, stream chunks and errors. No sockets here (recipes/serve.cpp).
#pragma once

#include "generate/generator.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace hyft::serve {

// A request the server answers with an error: the HTTP status, a message and
// the field at fault ("" for the body as a whole).
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message, std::string param = "", std::string type = "invalid_request_error")
      : std::runtime_error(message), status(status), param(std::move(param)), type(std::move(type)) {}
  int status;
  std::string param, type;
};

enum class Endpoint { Completions, ChatCompletions };

struct CompletionRequest {
  Endpoint endpoint = Endpoint::Completions;
  std::string model;  // as asked ("" when absent)
  std::string prompt;              // completions
  nlohmann::json messages;         // chat: the array as given
  std::optional<int64_t> max_tokens;
  generate::SamplingSettings sampling;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;  // stop strings
  bool stream = false;
};

// Parses and checks a body; throws ApiError (400) naming the field. Defaults as
// OpenAI's: temperature 1, top_p 1 (and top_k 0, repetition_penalty 1).
CompletionRequest parse_request(const std::string& body, Endpoint endpoint);

struct Usage {
  int64_t prompt_tokens = 0, completion_tokens = 0;
};

nlohmann::json error_json(const ApiError& e);
// A whole response (stream = false).
nlohmann::json response_json(const CompletionRequest& r, const std::string& id, int64_t created,
                             const std::string& model, const std::string& text, const std::string& finish_reason,
                             const Usage& usage);
// One server-sent event's data: a piece of text, or the end (finish_reason set).
nlohmann::json chunk_json(const CompletionRequest& r, const std::string& id, int64_t created, const std::string& model,
                          const std::string& delta, const std::optional<std::string>& finish_reason, bool first);

// Where the first stop string starts in `text` (npos when none).
size_t find_stop(const std::string& text, const std::vector<std::string>& stop);

}  // namespace hyft::serve
