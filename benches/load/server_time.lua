-- wrk script: POST PROVISIONCMD_SERVER_TIME over keep-alive connections and check every
-- response (status 200 and a body containing STAT_SUCCESS).
--
-- Note: defining response() makes wrk parse and hand every response body to Lua, which
-- costs wrk some throughput; on a small machine where wrk and the server share the CPU
-- this lowers the measured requests/s a little. Comment response() out for a raw number.
--
-- Usage: wrk -t2 -c64 -d15s --latency -s server_time.lua http://127.0.0.1:PORT/

wrk.method = "POST"
wrk.headers["Content-Type"] = "text/xml"
-- Kept on one line: server_time.sh extracts it for its warm-up request.
wrk.body = '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:PROV-TYPES="http://www.vasco.com/IdentikeyServer/IdentikeyTypes/Provisioning"><SOAP-ENV:Body><PROV-TYPES:provisioningExecute><cmd>PROVISIONCMD_SERVER_TIME</cmd><attributeSet/></PROV-TYPES:provisioningExecute></SOAP-ENV:Body></SOAP-ENV:Envelope>'

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  responses = 0
  non200 = 0
  no_success = 0
  first_bad = ""
end

function response(status, headers, body)
  responses = responses + 1
  if status ~= 200 then
    non200 = non200 + 1
  end
  if body == nil or not string.find(body, "STAT_SUCCESS", 1, true) then
    no_success = no_success + 1
    if first_bad == "" then
      first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 300)
    end
  end
end

function done(summary, latency, requests)
  local r, n, s, bad = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    r = r + t:get("responses")
    n = n + t:get("non200")
    s = s + t:get("no_success")
    if bad == "" then bad = t:get("first_bad") end
  end
  local e = summary.errors
  -- One machine-readable line, parsed by server_time.sh.
  io.write(string.format(
    "LUA_RESULT responses=%d non200=%d no_stat_success=%d connect_err=%d read_err=%d write_err=%d timeout_err=%d\n",
    r, n, s, e.connect, e.read, e.write, e.timeout))
  if bad ~= "" then
    io.write("LUA_FIRST_BAD " .. string.gsub(bad, "\n", " ") .. "\n")
  end
end
