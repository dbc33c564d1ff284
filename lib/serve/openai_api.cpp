#include "serve/openai_api.h"

#include <cmath>

namespace hyft::serve {

namespace {

using json = nlohmann::json;

const json* field(const json& body, const char* name) {
  const auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

double number(const json& body, const char* name, double def, double lo, double hi) {
  const json* v = field(body, name);
  if (!v) return def;
  if (!v->is_number()) throw ApiError(400, std::string("'") + name + "' must be a number", name);
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    throw ApiError(400, std::string("'") + name + "' must be in [" + json(lo).dump() + ", " + json(hi).dump() +
                            "], got " + v->dump(), name);
  return x;
}

}  // namespace

CompletionRequest parse_request(const std::string& body_text, Endpoint endpoint) {
  json body = json::parse(body_text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) throw ApiError(400, "the request body is not valid JSON");
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object");
  CompletionRequest r;
  r.endpoint = endpoint;
  if (const json* m = field(body, "model")) {
    if (!m->is_string()) throw ApiError(400, "'model' must be a string", "model");
    r.model = m->get<std::string>();
  }
  if (endpoint == Endpoint::Completions) {
    const json* p = field(body, "prompt");
    if (!p) throw ApiError(400, "'prompt' is required", "prompt");
    if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) p = &(*p)[0];  // one prompt in a list
    if (!p->is_string()) throw ApiError(400, "'prompt' must be a string (one prompt a request)", "prompt");
    r.prompt = p->get<std::string>();
    if (r.prompt.empty()) throw ApiError(400, "'prompt' is empty", "prompt");
  } else {
    const json* m = field(body, "messages");
    if (!m) throw ApiError(400, "'messages' is required", "messages");
    if (!m->is_array() || m->empty()) throw ApiError(400, "'messages' must be a non-empty array", "messages");
    for (size_t i = 0; i < m->size(); ++i) {
      const json& msg = (*m)[i];
      const std::string at = "messages[" + std::to_string(i) + "]";
      if (!msg.is_object() || !msg.contains("role") || !msg["role"].is_string())
        throw ApiError(400, "'" + at + "' must be an object with a string 'role'", at);
      if (!msg.contains("content") || !msg["content"].is_string())
        throw ApiError(400, "'" + at + ".content' must be a string", at + ".content");
    }
    r.messages = *m;
  }
  const char* max_name = field(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  if (const json* v = field(body, max_name)) {
    if (!v->is_number_integer() || v->get<int64_t>() < 1)
      throw ApiError(400, std::string("'") + max_name + "' must be a positive integer", max_name);
    r.max_tokens = v->get<int64_t>();
  }
  r.sampling.temperature = number(body, "temperature", 1.0, 0.0, 2.0);
  r.sampling.top_p = number(body, "top_p", 1.0, 1e-9, 1.0);
  r.sampling.top_k = int64_t(number(body, "top_k", 0, 0, 1e9));
  r.sampling.repetition_penalty = number(body, "repetition_penalty", 1.0, 1e-3, 100.0);
  if (const json* v = field(body, "seed")) {
    if (!v->is_number_integer()) throw ApiError(400, "'seed' must be an integer", "seed");
    r.seed = uint64_t(v->get<int64_t>());
  }
  if (const json* v = field(body, "stop")) {
    if (v->is_string()) r.stop.push_back(v->get<std::string>());
    else if (v->is_array() && v->size() <= 4) {
      for (const auto& s : *v) {
        if (!s.is_string()) throw ApiError(400, "'stop' must be a string or a list of up to 4 strings", "stop");
        r.stop.push_back(s.get<std::string>());
      }
    } else {
      throw ApiError(400, "'stop' must be a string or a list of up to 4 strings", "stop");
    }
    for (const auto& s : r.stop)
      if (s.empty()) throw ApiError(400, "'stop' strings must not be empty", "stop");
  }
  if (const json* v = field(body, "stream")) {
    if (!v->is_boolean()) throw ApiError(400, "'stream' must be true or false", "stream");
    r.stream = v->get<bool>();
  }
  if (const json* v = field(body, "n"); v && !(v->is_number_integer() && v->get<int64_t>() == 1))
    throw ApiError(400, "'n' must be 1 (one completion a request)", "n");
  return r;
}

nlohmann::json error_json(const ApiError& e) {
  return {{"error", {{"message", e.what()}, {"type", e.type}, {"param", e.param.empty() ? json() : json(e.param)},
                     {"code", e.status == 404 ? json("model_not_found") : json()}}}};
}

nlohmann::json response_json(const CompletionRequest& r, const std::string& id, int64_t created,
                             const std::string& model, const std::string& text, const std::string& finish_reason,
                             const Usage& usage) {
  json choice = {{"index", 0}, {"finish_reason", finish_reason}};
  if (r.endpoint == Endpoint::Completions) {
    choice["text"] = text;
    choice["logprobs"] = nullptr;
  } else {
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  }
  return {{"id", id},
          {"object", r.endpoint == Endpoint::Completions ? "text_completion" : "chat.completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array({choice})},
          {"usage", {{"prompt_tokens", usage.prompt_tokens}, {"completion_tokens", usage.completion_tokens},
                     {"total_tokens", usage.prompt_tokens + usage.completion_tokens}}}};
}

nlohmann::json chunk_json(const CompletionRequest& r, const std::string& id, int64_t created, const std::string& model,
                          const std::string& delta, const std::optional<std::string>& finish_reason, bool first) {
  json choice = {{"index", 0}, {"finish_reason", finish_reason ? json(*finish_reason) : json()}};
  if (r.endpoint == Endpoint::Completions) {
    choice["text"] = delta;
    choice["logprobs"] = nullptr;
  } else {
    json d = json::object();
    if (first) d["role"] = "assistant";
    if (!delta.empty() || !finish_reason) d["content"] = delta;
    choice["delta"] = d;
  }
  return {{"id", id},
          {"object", r.endpoint == Endpoint::Completions ? "text_completion" : "chat.completion.chunk"},
          {"created", created},
          {"model", model},
          {"choices", json::array({choice})}};
}

size_t find_stop(const std::string& text, const std::vector<std::string>& stop) {
  size_t best = std::string::npos;
  for (const auto& s : stop) best = std::min(best, text.find(s));
  return best;
}

}  // namespace hyft::serve
