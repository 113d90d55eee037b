-- wrk script: replay.lua's lines, each sent once. A thread whose lines are all answered stops and
-- appends a line to DONEFILE; the caller interrupts wrk (SIGINT) once every thread has, so wrk
-- prints its summary then (wrk's own clock always runs the whole -d otherwise).
-- A separate script because defining response() makes wrk parse every response for Lua, which
-- the timed runs (replay.lua) should not pay.
-- Usage: wrk -t2 -c50 -d600s -s replay_once.lua http://127.0.0.1:PORT -- FILE THREADS DONEFILE
local here = debug.getinfo(1, "S").source:sub(2):match("^(.*)/[^/]*$") or "."
dofile(here .. "/replay.lua")
once = true
local answered = 0
local donefile = nil
local replay_init = init

function init(args)
  replay_init(args)
  donefile = args[3]
end

function response(status, headers, body)
  answered = answered + 1
  if answered == #reqs then
    local f = io.open(donefile, "a")
    f:write("done\n")
    f:close()
    wrk.thread:stop()
  end
end
