-- Unknown fields in a REST request body, and lists of the wrong shape, refused instead of
-- dropped or reshaped.
--
-- Envoy's gRPC-JSON transcoder drops a body field its request message does not have, without
-- a word (platform-facts; Envoy has no option to refuse them): `max_token` for `max_tokens`,
-- or `metadata` where create-and-call takes `job_metadata`, would be lost and the request
-- served as if it had not been sent. This code runs before the transcoder. Each route of a
-- method that takes its request from the body carries its request message's name in the
-- route's metadata (devstack/envoy.py); the body's keys are checked against that message's
-- fields, and the fields of the messages inside it, before the transcoder drops anything.
-- A JSON object this cannot read is refused here too, as not valid JSON: the transcoder's
-- parser is lenient (single quotes, unquoted keys, trailing commas, form feeds as space),
-- and whatever this could not read, the transcoder could read and drop fields from. A body
-- that does not start as an object is the transcoder's to refuse.
--
-- The transcoder also reshapes a repeated field's value instead of refusing it: a single
-- value becomes a list of one (`"fallback_models": "a"`), a list in the list is flattened
-- (`[["a"]]`) and a null in it is dropped (`[null, "a"]`). Those are refused here too.
--
-- A field the route's path binds (`team_id` in /api/teams/{team_id}) is refused in the query,
-- where the transcoder would take the query's value over the path's (`GET
-- /api/teams/a?team_id=b` would read team b), by either spelling (`team_id`, `teamId`), also
-- percent-encoded (`team%5Fid`, which the transcoder decodes), or as the start of a nested
-- one (`team_id.x`). In a body (a method whose request is the whole body), such a field is
-- refused when its value differs from the path's: the transcoder refuses only the first
-- `team_id` key that differs, and would let a second one, or `teamId`, win over the path (or
-- the path win over it) without a word. The route's metadata (devstack/envoy.py) lists the
-- fields its path binds, as {name, json_name, segment: the path segment that holds it}.
--
-- A key given twice in one object of a body is refused, by either spelling of a field
-- (`{"status": "failed", "status": "completed"}`, `{"job_type": "a", "jobType": "b"}`): the
-- transcoder would take the last value and drop the other without a word. Inside free-form
-- JSON (`metadata`) the transcoder refuses a key given twice itself (local_replies.lua names
-- it): this walk keeps no keys there.
--
-- A method whose request is the body (`body: "*"`) refuses any query parameter: the
-- transcoder would merge it into the request, over the body's value (`POST
-- /api/jobs/create?job_type=q` with `{"job_type": "b"}` created a job of type q). Elsewhere
-- (the GETs, the DELETEs), a field that takes one value (not a list or a map) is refused when
-- the query gives it twice, by either spelling (`?start_date=a&start_date=b`,
-- `?start_date=a&startDate=b`, also percent-encoded): the transcoder would take the last
-- value and drop the others without a word, and a report would cover other dates than the
-- caller meant. A list's values add up, and a sub-message's fields (`a.b`) are the
-- transcoder's. The route's metadata (devstack/envoy.py) lists those fields, {name,
-- json_name} each, as single_fields (but for the ones its path binds, refused in the query
-- at once).
--
-- devstack/envoy.py defines BODY_FIELDS above this file, from the descriptor set: each
-- message a request body can hold (full name) -> {field name -> false for a value this check
-- does not look into (scalars, enums, google.protobuf.Struct, maps...), the full name of the
-- message the value is (or of a well-known type whose JSON is a string: a timestamp, a
-- duration, which the transcoder would also take as an object with unchecked keys), or for
-- a repeated field "[]" followed by the full name of its messages (or nothing, for values
-- this check does not look into)}. Both spellings of a
-- field are keys (`max_tokens`, `maxTokens`), as the transcoder takes both; and JSON_NAMES:
-- each field's JSON name -> its name, where they differ.

local SPACE = "^[ \t\r\n]*()"
-- An unknown key is named with at most this many bytes, and only one this long is compared
-- with the fields for a suggestion (the comparison's cost grows with its length).
local KEY_BYTES = 64

-- A fault that makes the body not JSON, at byte `at`.
local function fail(what, at)
  error({ what = what, at = at }, 0)
end

-- The position just after the JSON string that starts at `at` (a double quote).
local function string_end(s, at)
  local from = at + 1
  while true do
    local stop = string.find(s, '["\\]', from)
    if stop == nil then fail("a string is not closed", at) end
    if string.byte(s, stop) == 34 then return stop + 1 end
    from = stop + 2
  end
end

local object_end, list_end, repeated_end

-- The position just after the JSON value at `at`, found at `path`. When `message` is given
-- (a message's full name), an object there is one, or a list's objects are; the first
-- field found that its message lacks goes to `found.first`, as {key, path (where it was
-- sent), message (whose field it is not), parent (the path of the object that holds it)},
-- unless another fault came first (a list of the wrong shape, a field given twice): {path,
-- description}. What is not JSON as far as this reads it is an error.
local function value_end(s, at, message, path, found)
  local first = string.byte(s, at)
  if first == 34 then return string_end(s, at) end
  if first == 123 then return object_end(s, at, message, path, found) end
  if first == 91 then return list_end(s, at, message, path, found) end
  local stop = string.find(s, "[,%]} \t\r\n]", at) or #s + 1
  if stop == at then fail("expected a value", at) end
  return stop
end

-- The list at `at`; with `repeated` (a repeated field's), a list in it or a null is refused.
list_end = function(s, at, message, path, found, repeated)
  local index, from = 0, string.match(s, SPACE, at + 1)
  if string.byte(s, from) == 93 then return from + 1 end
  while true do
    -- A path is built only where a message's fields are checked, or to name a fault.
    local at_path = message and path .. "[" .. index .. "]"
    if repeated and found.first == nil then
      if string.byte(s, from) == 91 then
        found.first = { path = path .. "[" .. index .. "]", description = "must be a single value, not a JSON array" }
      elseif string.sub(s, from, from + 3) == "null" then
        found.first = { path = path .. "[" .. index .. "]", description = "must not be null" }
      end
    end
    from = string.match(s, SPACE, value_end(s, from, message, at_path, found))
    local byte = string.byte(s, from)
    if byte == 93 then return from + 1 end
    if byte ~= 44 then fail("expected , or ]", from) end
    index, from = index + 1, string.match(s, SPACE, from + 1)
  end
end

-- A repeated field's value at `at`: a list (or null, for none); `kind` is "[]" and its
-- messages' full name, if any.
repeated_end = function(s, at, kind, path, found)
  local message = #kind > 2 and string.sub(kind, 3) or nil
  if string.byte(s, at) == 91 then return list_end(s, at, message, path, found, true) end
  if found.first == nil and string.sub(s, at, at + 3) ~= "null" then
    found.first = { path = path, description = "must be a JSON array" }
  end
  return value_end(s, at, nil, path, found)
end

object_end = function(s, at, message, path, found)
  local fields = message and BODY_FIELDS[message]
  local from = string.match(s, SPACE, at + 1)
  if string.byte(s, from) == 125 then return from + 1 end
  -- The fields given so far, by name (as the API documents it). Free-form JSON (`metadata`)
  -- is the transcoder's: it refuses a key given twice there (local_replies.lua names it).
  local given = fields and {}
  while true do
    if string.byte(s, from) ~= 34 then fail("expected a key in double quotes", from) end
    local key_end = string_end(s, from)
    local kind, name, bound, once = nil, nil, nil, nil
    if fields then
      local key = json_unescape(string.sub(s, from + 1, key_end - 2))
      kind, name = fields[key], path == "" and key or path .. "." .. key
      if kind == nil and found.first == nil then
        found.first = { key = key, path = name, message = message, parent = path }
      end
      -- A field the path binds, at the top of the body.
      bound = path == "" and found.bound ~= nil and found.bound[key] or nil
      once = JSON_NAMES[key] or key
    end
    from = string.match(s, SPACE, key_end)
    if string.byte(s, from) ~= 58 then fail("expected :", from) end
    from = string.match(s, SPACE, from + 1)
    local stop
    if kind and string.byte(kind, 1) == 91 then -- "[]...": a repeated field
      stop = repeated_end(s, from, kind, name, found)
    elseif kind and WELL_KNOWN[kind] then -- a timestamp, a duration...: a string (or null)
      if found.first == nil and string.byte(s, from) ~= 34 and string.sub(s, from, from + 3) ~= "null" then
        found.first = { path = name, description = "invalid value: expected " .. WELL_KNOWN[kind] }
      end
      stop = value_end(s, from, nil, name, found)
    else
      stop = value_end(s, from, kind or nil, name, found)
    end
    if bound and found.first == nil then
      local value = string.sub(s, from, stop - 1)
      if string.byte(value, 1) == 34 then value = json_unescape(string.sub(value, 2, -2)) end
      -- null is no value: the transcoder leaves the path's.
      if value ~= bound.value and value ~= "null" then
        found.first = { path = bound.name, description = "must not differ from its value in the URL path" }
      end
    end
    -- A field given twice, by either spelling: the transcoder would take the last value and
    -- drop the other without a word.
    if given then
      if given[once] and found.first == nil then
        found.first = { path = path == "" and once or path .. "." .. once, description = TWICE }
      end
      given[once] = true
    end
    from = string.match(s, SPACE, stop)
    local byte = string.byte(s, from)
    if byte == 125 then return from + 1 end
    if byte ~= 44 then fail("expected , or }", from) end
    from = string.match(s, SPACE, from + 1)
  end
end

-- Levenshtein distance, for the suggestion.
local function distance(a, b)
  local previous = {}
  for j = 0, #b do previous[j] = j end
  for i = 1, #a do
    local current = { [0] = i }
    for j = 1, #b do
      local cost = string.byte(a, i) == string.byte(b, j) and 0 or 1
      current[j] = math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
    end
    previous = current
  end
  return previous[#b]
end

-- "is not a field of ...", with the fields the client may have meant: the nearest by edit
-- distance (at most 2, or a quarter of the key's length), or those ending in `_<key>`
-- (`metadata` -> `job_metadata`).
local function unknown_description(unknown)
  local fields, lowered = BODY_FIELDS[unknown.message], string.lower(unknown.key)
  local near, best = {}, math.max(2, math.floor(#lowered / 4))
  for name in pairs(#lowered <= KEY_BYTES and fields or {}) do
    -- The documented (proto) names only: a camelCase spelling has a capital.
    if not string.find(name, "%u") then
      local d = distance(lowered, name)
      if string.sub(name, -#lowered - 1) == "_" .. lowered then d = 0 end
      if d <= best and (#near == 0 or d < best) then
        near, best = { name }, d
      elseif d == best then
        near[#near + 1] = name
      end
    end
  end
  local description = "is not a field of " .. (unknown.parent == "" and "this request" or unknown.parent)
  if #near > 0 then
    table.sort(near)
    description = description .. "; did you mean " .. table.concat(near, " or ") .. "?"
  end
  if unknown.parent == "" and fields.extra_body ~= nil then
    description = description .. " (a provider's own parameter goes in extra_body)"
  end
  return description
end

-- A key as the error names it: at most KEY_BYTES of it (never cutting a UTF-8 character),
-- and "" for the empty key.
local function shown(key)
  if key == "" then return '""' end
  if #key <= KEY_BYTES then return key end
  local to = KEY_BYTES
  while to > 1 and is_continuation(key, to + 1) do to = to - 1 end
  return string.sub(key, 1, to) .. "..."
end

-- What is wrong with a request body that is a `message`: (the field, why) for its first
-- unknown field, list of the wrong shape, field given twice or field whose value differs
-- from the path's (`bound`: path_values'); (nil, nil, why) for a JSON object this cannot
-- read; nil when nothing is (or the body does not start as an object: the transcoder's).
local function body_fault(body, message, bound)
  local from = string.match(body, SPACE, 1)
  if from > #body then return nil end -- no body: an empty request
  if string.byte(body, from) ~= 123 then
    -- Another JSON value (an array, a string...) or no JSON at all: the transcoder refuses
    -- those, but reads a form feed as space (and then an object it drops fields from).
    if string.find(body, '^[%["%-0-9tfn]', from) then return nil end
    return nil, nil, "the request body is not valid JSON: expected { at byte " .. from
  end
  local found = { bound = bound }
  local ok, fault = pcall(function()
    local stop = string.match(body, SPACE, object_end(body, from, message, "", found))
    if stop <= #body then fail("text after the object", stop) end
  end)
  local first = found.first
  if first ~= nil then
    local path = first.key and (first.parent == "" and "" or first.parent .. ".") .. shown(first.key) or first.path
    return path, first.description or unknown_description(first)
  end
  if ok then return nil end
  if type(fault) ~= "table" then -- Lua's own limits (a body nested thousands deep)
    return nil, nil, "the request body is not valid JSON or is nested too deeply"
  end
  local near = excerpt(body, fault.at)
  return nil, nil, "the request body is not valid JSON: " .. fault.what .. " at byte " .. fault.at
    .. (near ~= "" and ", near: " .. near or "")
end

-- `s` with every %XX decoded, as the transcoder decodes a path segment or a query
-- parameter's name.
local function percent_decoded(s)
  return (string.gsub(s, "%%(%x%x)", function(hex) return string.char(tonumber(hex, 16)) end))
end

local NO_FIELDS = {}

-- The first parameter of `query` (the request's, after the ?) that names a field the path
-- binds (`path_fields`, the route's metadata), or any other when the request is the whole
-- body (`whole_body`: the transcoder would merge it into the body's, over its values), or a
-- field that takes one value (`single_fields`, the route's metadata) named a second time,
-- by either spelling: (that field as the API documents it, or the parameter as sent, why);
-- nil when none does. One pass over the query.
local function query_fault(query, path_fields, single_fields, whole_body)
  local given = {}
  for param in string.gmatch(query, "[^&]+") do
    -- The name as the transcoder reads it: up to the first =, percent-decoded.
    local name = percent_decoded(string.match(param, "^[^=]*"))
    for _, field in ipairs(path_fields or NO_FIELDS) do
      for _, spelling in ipairs({ field.name, field.json_name }) do
        if name == spelling or string.sub(name, 1, #spelling + 1) == spelling .. "." then
          return field.name, "is given by the path; remove it from the query and put the value you mean in the path"
        end
      end
    end
    if whole_body then return shown(name), "is not a query parameter of this method; send it in the body" end
    for _, field in ipairs(single_fields or NO_FIELDS) do
      if name == field.name or name == field.json_name then
        if given[field.name] then return field.name, "is given more than once in the query; give it once" end
        given[field.name] = true
        break
      end
    end
  end
  return nil
end

-- Each spelling of a field the path binds -> {name (as the API documents it), value (the
-- path's, percent-decoded as the transcoder decodes it)}, for body_fault.
local function path_values(path, path_fields)
  local segments = {}
  for segment in string.gmatch(string.match(path, "^[^?]*"), "[^/]+") do segments[#segments + 1] = segment end
  local bound = {}
  for _, field in ipairs(path_fields) do
    local value = { name = field.name, value = percent_decoded(segments[field.segment] or "") }
    bound[field.name], bound[field.json_name] = value, value
  end
  return bound
end
