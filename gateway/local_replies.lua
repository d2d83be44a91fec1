-- The transcoder's refusals in the server's own error shape.
--
-- When Envoy's gRPC-JSON transcoder refuses a request body or query (malformed JSON, a
-- string where an integer goes, an unknown enum name...), its 400 never reaches the server.
-- local_reply_config (devstack/envoy.py) already gives it {"code": 3, "message", "details":
-- [ErrorInfo INVALID_REQUEST]} and marks it with the header LOCAL_REPLY_HEADER, whose value
-- is Envoy's response code details. This filter sits before the transcoder, so it sees that
-- reply on its way out: it reads the transcoder's message and rewrites the body as the
-- server's INVALID_ARGUMENT errors are (server/api/errors.py, server/domain/errors.py
-- invalid_argument): "field: description", ErrorInfo metadata {"field"} and a BadRequest
-- field violation, whenever the message names the field (a key given twice in free-form
-- JSON by its key, not by the transcoder's `metadata.fields[0]`). A message it does not
-- recognise keeps the body local_reply_config gave it. devstack/envoy.py defines two names above this
-- file: LOCAL_REPLY_HEADER, and ENUM_VALUES (each enum's full name -> its value names), from
-- the descriptor set. The request side's refusals (body_fields.lua) are local replies too,
-- which local_reply_config wraps like Envoy's own: they get their own body back here.
--
-- On the OpenAI-compatible surface (a route whose metadata has `openai`: the /v1 routes and
-- the OpenAIService methods they become, devstack/envoy.py and the template) every JSON
-- error also gets OpenAI's member beside ours, which OpenAI's SDKs read (they build their
-- exception from `body.error`): {"error": {"message", "type", "param", "code", "details"}},
-- `param` the BadRequest's field, `code` the ErrorInfo's reason, `details` ours again (for
-- an SDK user who reads `e.body["details"]`). Only an error's body is read: a successful
-- answer, and a stream, pass unbuffered.

local ESCAPES = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }
-- What a value of each type the transcoder names must look like, as a JSON client sees it.
local SCALARS = {
  TYPE_INT32 = "a 32-bit integer",
  TYPE_SINT32 = "a 32-bit integer",
  TYPE_SFIXED32 = "a 32-bit integer",
  TYPE_UINT32 = "a non-negative 32-bit integer",
  TYPE_FIXED32 = "a non-negative 32-bit integer",
  TYPE_INT64 = "a 64-bit integer",
  TYPE_SINT64 = "a 64-bit integer",
  TYPE_SFIXED64 = "a 64-bit integer",
  TYPE_UINT64 = "a non-negative 64-bit integer",
  TYPE_FIXED64 = "a non-negative 64-bit integer",
  TYPE_DOUBLE = "a number",
  TYPE_FLOAT = "a number",
  TYPE_BOOL = "true or false",
  TYPE_STRING = "a string",
  TYPE_BYTES = "base64-encoded bytes",
}
local WELL_KNOWN = {
  ["google.protobuf.Struct"] = "a JSON object",
  ["google.protobuf.ListValue"] = "a JSON array",
  ["google.protobuf.Timestamp"] = 'an RFC 3339 timestamp such as "2026-01-31T00:00:00Z"',
  ["google.protobuf.Duration"] = 'a duration such as "1.5s"',
  ["google.protobuf.FieldMask"] = "a comma-separated list of field names",
  ["google.protobuf.DoubleValue"] = "a number",
  ["google.protobuf.FloatValue"] = "a number",
  ["google.protobuf.Int32Value"] = "a 32-bit integer",
  ["google.protobuf.UInt32Value"] = "a non-negative 32-bit integer",
  ["google.protobuf.Int64Value"] = "a 64-bit integer",
  ["google.protobuf.UInt64Value"] = "a non-negative 64-bit integer",
  ["google.protobuf.BoolValue"] = "true or false",
  ["google.protobuf.StringValue"] = "a string",
  ["google.protobuf.BytesValue"] = "base64-encoded bytes",
}
local EXCERPT_BYTES = 40
-- A key given twice in one object of a body (here and in body_fields.lua).
local TWICE = "is given more than once in the body; give it once"

local function utf8_char(code)
  if code < 0x80 then return string.char(code) end
  if code < 0x800 then return string.char(0xC0 + math.floor(code / 0x40), 0x80 + code % 0x40) end
  if code < 0x10000 then
    return string.char(0xE0 + math.floor(code / 0x1000), 0x80 + math.floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
  end
  return string.char(0xF0 + math.floor(code / 0x40000), 0x80 + math.floor(code / 0x1000) % 0x40,
    0x80 + math.floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
end

-- The text of a JSON string literal's inside (escapes resolved; a lone surrogate is U+FFFD).
local function json_unescape(s)
  local out, i = {}, 1
  while true do
    local j = string.find(s, "\\", i, true)
    if j == nil then
      out[#out + 1] = string.sub(s, i)
      return table.concat(out)
    end
    out[#out + 1] = string.sub(s, i, j - 1)
    local c = string.sub(s, j + 1, j + 1)
    if c == "u" then
      local code = tonumber(string.sub(s, j + 2, j + 5), 16) or 0xFFFD
      i = j + 6
      if code >= 0xD800 and code < 0xDC00 and string.sub(s, i, i + 1) == "\\u" then
        local low = tonumber(string.sub(s, i + 2, i + 5), 16)
        if low ~= nil and low >= 0xDC00 and low < 0xE000 then
          code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
          i = i + 6
        end
      end
      if code >= 0xD800 and code < 0xE000 then code = 0xFFFD end
      out[#out + 1] = utf8_char(code)
    else
      out[#out + 1] = ESCAPES[c] or c
      i = j + 2
    end
  end
end

local QUOTED = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t" }

local function json_string(s)
  local escaped = string.gsub(s, '[%c"\\]', function(c) return QUOTED[c] or string.format("\\u%04x", string.byte(c)) end)
  return '"' .. escaped .. '"'
end

local function is_continuation(s, at)
  local byte = string.byte(s, at)
  return byte ~= nil and byte >= 0x80 and byte < 0xC0
end

-- At most EXCERPT_BYTES of `s` from byte `from`, never cutting a UTF-8 character.
local function excerpt(s, from)
  while is_continuation(s, from) do from = from + 1 end
  local to = from + EXCERPT_BYTES - 1
  if to >= #s then return string.sub(s, from) end
  while to > from and is_continuation(s, to + 1) do to = to - 1 end
  return string.sub(s, from, to) .. "..."
end

local function expected(type_name)
  if SCALARS[type_name] then return SCALARS[type_name] end
  local full = string.gsub(type_name, "^type%.googleapis%.com/", "")
  if WELL_KNOWN[full] then return WELL_KNOWN[full] end
  if ENUM_VALUES[full] then return "one of " .. ENUM_VALUES[full] end
  return "a JSON object (" .. string.gsub(full, "^saaslitellm%.v1%.", "") .. ")"
end

-- A key given twice in free-form JSON (google.protobuf.Struct), which the transcoder names by
-- the entry it was reading: `metadata.fields[0]`, `stop.list_value.values[1].struct_value.fields[0]`.
-- -> the key as the API's JSON has it (`metadata.a`, `stop[1].a`), why; or, when the key is
-- in an object inside the field (`metadata.fields[0].value.struct_value.fields[0]`: the
-- message does not say under which key), that field, why. nil for another path.
local function repeated_key(path, key)
  local json = string.gsub(string.gsub(path, "%.struct_value", ""), "%.list_value%.values(%[%d+%])", "%1")
  local holder = string.match(json, "^(.*)%.fields%[%d+%]$")
  if holder == nil then return nil end
  local outer = string.find(holder, ".fields[", 1, true)
  if outer == nil then return holder .. "." .. key, TWICE end
  return string.sub(holder, 1, outer - 1), "has the key " .. json_string(key) .. " more than once in one of its objects; give it once"
end

-- The transcoder's message -> our message, and the field and its description when the
-- message names a field (nil, nil otherwise). nil when the message is not one we know.
local function explain(message)
  local path, rest = string.match(message, "^([%w_%.%[%]]*): (.*)$")
  if path ~= nil then
    local value, type_name = string.match(rest, "^invalid value (.*) for type (%S+)$")
    if value ~= nil and string.find(value, "^Starting an object on a scalar field") then
      -- `{"job_type": {...}}`: the path is the enclosing object's, the type is the field.
      local field = path == "" and type_name or path .. "." .. type_name
      return nil, field, "must be a single value, not a JSON object"
    end
    if value ~= nil then
      if string.sub(value, 1, 7) == "Field '" then
        -- Timestamps and durations: the value is the parser's own sentence, not the value.
        return nil, path, "invalid value: expected " .. expected(type_name)
      end
      return nil, path, "invalid value " .. excerpt(value, 1) .. ": expected " .. expected(type_name)
    end
    if rest == "Proto field is not repeating, cannot start list." then
      -- The path is the enclosing object's (empty at the top level): the field is unknown,
      -- so none is named (a client would point at the wrong one); the message says where.
      if path == "" then return "the request body has a JSON array where a single value belongs" end
      return "a field of " .. path .. " has a JSON array where a single value belongs"
    end
    if path == "" and rest == "Root element must be a message." then
      return "the request body must be a JSON object"
    end
    local key = string.match(rest, "^Repeated map key: '(.*)' is already set%.$")
    if key ~= nil then
      local field, description = repeated_key(path, key)
      if field ~= nil then return nil, field, description end
    end
    if path ~= "" then return nil, path, rest end
    return nil
  end
  local unknown = string.match(message, '^Could not find field "([^"]+)" in the type ')
  if unknown ~= nil then return nil, unknown, "is not a query parameter of this method" end
  local bound = string.match(message, "^The binding value .* of the field (%S+) is conflicting with the value ")
  if bound ~= nil then return nil, bound, "must not differ from its value in the URL path" end
  -- A JSON syntax error: "<what>.\n<an excerpt of the body>\n<spaces>^" (caret under the spot).
  local what, context, caret = string.match(message, "^([^\n]*)\n(.-)\n( *)%^$")
  if what == nil then return nil end
  what = string.gsub(what, "%.$", "")
  local near = excerpt(context, #caret + 1)
  if near ~= "" and what ~= "Encountered non UTF-8 code points" then
    return "the request body is not valid JSON: " .. what .. ", near: " .. near
  end
  return "the request body is not valid JSON: " .. what
end

local function error_body(message, field, description)
  local info = '{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"INVALID_REQUEST",'
    .. '"domain":"saaslitellm","metadata":{'
  if field == nil then
    return '{"code":3,"message":' .. json_string(message) .. ',"details":[' .. info .. "}}]}"
  end
  return '{"code":3,"message":' .. json_string(field .. ": " .. description) .. ',"details":[' .. info
    .. '"field":' .. json_string(field) .. "}},"
    .. '{"@type":"type.googleapis.com/google.rpc.BadRequest","field_violations":[{"field":'
    .. json_string(field) .. ',"description":' .. json_string(description) .. ',"reason":""}]}]}'
end

-- OpenAI's error type for an HTTP status: its own where it has one for the status
-- (invalid_request_error for 400, 401, 404...; server_error for 5xx), rate_limit_error for
-- 429, for which it has several (requests, tokens, insufficient_quota).
local function openai_type(status)
  if status == 429 then return "rate_limit_error" end
  if status >= 500 then return "server_error" end
  return "invalid_request_error"
end

-- A small JSON reader, for error bodies (the server's through the transcoder, Envoy's own,
-- this file's). Objects and arrays are tables; null is nil. It errors on anything else.
local read_value

local function skip_space(s, at)
  return string.find(s, "[^ \t\r\n]", at) or #s + 1
end

local function read_string(s, at)
  local from = at + 1
  while true do
    local close = string.find(s, '["\\]', from)
    if close == nil then error("an unterminated string") end
    if string.sub(s, close, close) == '"' then return json_unescape(string.sub(s, at + 1, close - 1)), close + 1 end
    from = close + 2
  end
end

-- An object: its members, and where each member's value starts and ends in `s`.
local function read_object(s, at)
  local members, spans = {}, {}
  at = skip_space(s, at + 1)
  if string.sub(s, at, at) == "}" then return members, at + 1, spans end
  while true do
    if string.sub(s, at, at) ~= '"' then error("a member without a name") end
    local name
    name, at = read_string(s, at)
    at = skip_space(s, at)
    if string.sub(s, at, at) ~= ":" then error("a name without a value") end
    local start = skip_space(s, at + 1)
    members[name], at = read_value(s, start)
    spans[name] = { start, at - 1 }
    at = skip_space(s, at)
    local c = string.sub(s, at, at)
    if c == "}" then return members, at + 1, spans end
    if c ~= "," then error("an object without a comma") end
    at = skip_space(s, at + 1)
  end
end

local function read_array(s, at)
  local items = {}
  at = skip_space(s, at + 1)
  if string.sub(s, at, at) == "]" then return items, at + 1 end
  while true do
    items[#items + 1], at = read_value(s, skip_space(s, at))
    at = skip_space(s, at)
    local c = string.sub(s, at, at)
    if c == "]" then return items, at + 1 end
    if c ~= "," then error("an array without a comma") end
    at = at + 1
  end
end

read_value = function(s, at)
  local c = string.sub(s, at, at)
  if c == "{" then return read_object(s, at) end
  if c == "[" then return read_array(s, at) end
  if c == '"' then return read_string(s, at) end
  local word = string.match(s, "^%a+", at)
  if word == "true" or word == "false" then return word == "true", at + #word end
  if word == "null" then return nil, at + 4 end
  local number = string.match(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", at)
  if number == nil or tonumber(number) == nil then error("not a JSON value") end
  return tonumber(number), at + #number
end

-- What OpenAI's member says of our error body `text` (an object with `message`): the
-- member, or nil for a body that is not one of ours or already has an `error`.
local function openai_member(text, status)
  local start = skip_space(text, 1)
  if string.sub(text, start, start) ~= "{" then return nil end
  local ok, body, after, spans = pcall(read_object, text, start)
  if not ok or skip_space(text, after) <= #text then return nil end
  if type(body.message) ~= "string" or body.error ~= nil then return nil end
  local code, param = "null", "null"
  for _, detail in ipairs(type(body.details) == "table" and body.details or {}) do
    local kind = type(detail) == "table" and detail["@type"] or nil
    if kind == "type.googleapis.com/google.rpc.ErrorInfo" and type(detail.reason) == "string" and code == "null" then
      code = json_string(detail.reason)
    end
    local violations = kind == "type.googleapis.com/google.rpc.BadRequest" and detail.field_violations or nil
    if type(violations) == "table" and type(violations[1]) == "table" and type(violations[1].field) == "string"
        and param == "null" then
      param = json_string(violations[1].field)
    end
  end
  local member = '"error":{"message":' .. json_string(body.message) .. ',"type":' .. json_string(openai_type(status))
    .. ',"param":' .. param .. ',"code":' .. code
  if spans.details ~= nil then
    member = member .. ',"details":' .. string.sub(text, spans.details[1], spans.details[2])
  end
  return member .. "}"
end

-- The transcoder's refusal (`lua`: this filter's own) in our error shape: the body's new
-- text, or nil to keep the body.
local function refusal_body(lua, text)
  local escaped = string.match(text, '"message":"(.*)"}%s*$')
  if escaped == nil then return nil end
  if lua then
    -- This filter's own refusal (body_fields.lua), which local_reply_config wrapped as its
    -- message: its body is that message.
    return json_unescape(escaped)
  end
  local message, field, description = explain(json_unescape(escaped))
  if message == nil and field == nil then return nil end
  return error_body(message, field, description)
end

function envoy_on_response(handle)
  local headers = handle:headers()
  local details = headers:get(LOCAL_REPLY_HEADER)
  if details ~= nil then headers:remove(LOCAL_REPLY_HEADER) end
  local lua = details == "lua_response"
  -- grpc_json_transcode_failure{...}, or early_grpc_json_transcode_failure{...} for a query.
  local refusal = lua or details ~= nil and string.find(details, "grpc_json_transcode_failure", 1, true) ~= nil
  local status = tonumber(headers:get(":status")) or 0
  local openai = status >= 400 and handle:metadata():get("openai") == true
    and string.find(headers:get("content-type") or "", "^application/json") ~= nil
  if not refusal and not openai then return end
  local body = handle:body()
  if body == nil then return end
  local text = body:getBytes(0, body:length())
  local rewritten = refusal and refusal_body(lua, text) or nil
  local member = openai and openai_member(rewritten or text, status) or nil
  if member ~= nil then
    -- Our bodies end with the object's `}` (openai_member read them whole).
    text = rewritten or text
    rewritten = string.sub(text, 1, string.find(text, "}[ \t\r\n]*$") - 1) .. "," .. member .. "}"
  end
  if rewritten ~= nil then body:setBytes(rewritten) end
end
