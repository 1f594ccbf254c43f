# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_memtrail_global_optspecs
	string join \n h/help V/version
end

function __fish_memtrail_needs_command
	# Figure out if the current invocation already has a command.
	set -l cmd (commandline -opc)
	set -e cmd[1]
	argparse -s (__fish_memtrail_global_optspecs) -- $cmd 2>/dev/null
	or return
	if set -q argv[1]
		# Also print the command, so this can be used to figure out what it is.
		echo $argv[1]
		return 1
	end
	return 0
end

function __fish_memtrail_using_subcommand
	set -l cmd (__fish_memtrail_needs_command)
	test -z "$cmd"
	and return 1
	contains -- $cmd[1] $argv
end

complete -c memtrail -n "__fish_memtrail_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c memtrail -n "__fish_memtrail_needs_command" -s V -l version -d 'Print version'
complete -c memtrail -n "__fish_memtrail_needs_command" -f -a "snap" -d 'Take one snapshot: a pmap-like table of regions, JSON, or a binary file'
complete -c memtrail -n "__fish_memtrail_needs_command" -f -a "record" -d 'Record samples over time to a binary file or a pipe'
complete -c memtrail -n "__fish_memtrail_needs_command" -f -a "run" -d 'Start a command and record it and all its descendants until it exits'
complete -c memtrail -n "__fish_memtrail_needs_command" -f -a "analyze" -d 'Judge a recording: a leak verdict per process, with the findings behind it'
complete -c memtrail -n "__fish_memtrail_needs_command" -f -a "diff" -d 'Compare two snapshots, or two moments of one recording, region by region'
complete -c memtrail -n "__fish_memtrail_needs_command" -f -a "report" -d 'Show a recording: a terminal or Markdown summary, or an HTML page with charts'
complete -c memtrail -n "__fish_memtrail_needs_command" -f -a "export" -d 'Export every process sample as CSV, NDJSON or OpenMetrics (for Prometheus)'
complete -c memtrail -n "__fish_memtrail_needs_command" -f -a "dump" -d 'Print every frame of a recording as one JSON object per line'
complete -c memtrail -n "__fish_memtrail_needs_command" -f -a "serve" -d 'Serve live memory series and leak verdicts to Prometheus over HTTP'
complete -c memtrail -n "__fish_memtrail_needs_command" -f -a "mark" -d 'Put a labelled marker on the timeline of a running recording'
complete -c memtrail -n "__fish_memtrail_needs_command" -f -a "attach" -d 'Record a running Python process and have its dormant hook report censuses'
complete -c memtrail -n "__fish_memtrail_needs_command" -f -a "python-hook" -d 'Install, remove or check the dormant hook `memtrail attach` talks to'
complete -c memtrail -n "__fish_memtrail_needs_command" -f -a "demo" -d 'Record a real leaking Python program for about 20 seconds and show what memtrail sees'
complete -c memtrail -n "__fish_memtrail_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c memtrail -n "__fish_memtrail_using_subcommand snap" -l pid -d 'The process with this pid' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand snap" -l name -d 'Every process whose name (comm) or command line matches REGEX' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand snap" -l detail -d 'How much to read [default: maps for one process, summary otherwise]' -r -f -a "summary\t'status, stat, descriptor and thread counts (cheapest)'
rollup\t'+ smaps_rollup: PSS and the private/shared split'
maps\t'+ per-region smaps (re-read when memory changed, when recording)'
full\t'+ per-region smaps every sample and every descriptor\'s target'"
complete -c memtrail -n "__fish_memtrail_using_subcommand snap" -l min-rss -d 'Only list regions with at least this much resident memory, e.g. 1MiB' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand snap" -l sort -d 'Order regions (and processes) by this' -r -f -a "rss\t'Resident memory (largest first)'
pss\t'Proportional set size (largest first)'
anon\t'Anonymous memory (largest first)'
swap\t'Swapped-out memory (largest first)'
size\t'Virtual size (largest first)'
addr\t'Start address (lowest first), as pmap prints'"
complete -c memtrail -n "__fish_memtrail_using_subcommand snap" -l format -d 'Output format on standard output' -r -f -a "table\t'A pmap-like table per process'
json\t'One JSON document'"
complete -c memtrail -n "__fish_memtrail_using_subcommand snap" -s o -l output -d 'Write a binary snapshot to FILE instead (`-` for standard output)' -r -F
complete -c memtrail -n "__fish_memtrail_using_subcommand snap" -l all -d 'Every process this user can see'
complete -c memtrail -n "__fish_memtrail_using_subcommand snap" -l children -d 'With --pid: also every descendant, following children that start and exit'
complete -c memtrail -n "__fish_memtrail_using_subcommand snap" -l redact-cmdline -d 'Keep only argv[0] of command lines (arguments can hold secrets)'
complete -c memtrail -n "__fish_memtrail_using_subcommand snap" -l anon -d 'Only list anonymous regions (heap, stacks, anonymous mmaps)'
complete -c memtrail -n "__fish_memtrail_using_subcommand snap" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c memtrail -n "__fish_memtrail_using_subcommand snap" -s V -l version -d 'Print version'
complete -c memtrail -n "__fish_memtrail_using_subcommand record" -l pid -d 'The process with this pid' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand record" -l name -d 'Every process whose name (comm) or command line matches REGEX' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand record" -l interval -d 'Time between samples, e.g. 100ms, 1s, 1m, or `auto`: every 50ms at first, thinning out as the targets age [default: 1s; run: auto]' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand record" -l detail -d 'How much to read per sample' -r -f -a "summary\t'status, stat, descriptor and thread counts (cheapest)'
rollup\t'+ smaps_rollup: PSS and the private/shared split'
maps\t'+ per-region smaps (re-read when memory changed, when recording)'
full\t'+ per-region smaps every sample and every descriptor\'s target'"
complete -c memtrail -n "__fish_memtrail_using_subcommand record" -l maps-every -d 'At detail `maps`, re-read every region at least every N samples' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand record" -l duration -d 'Stop after this long, e.g. 10m [default: until the targets exit or Ctrl-C]' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand record" -l count -d 'Stop after N samples' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand record" -s o -l output -d 'Write the recording to FILE (`-`, the default, is standard output); with --rotate, a directory of segments' -r -F
complete -c memtrail -n "__fish_memtrail_using_subcommand record" -l events -d 'Also read markers and censuses from this FIFO or file (created as a FIFO if missing; docs/events.md)' -r -F
complete -c memtrail -n "__fish_memtrail_using_subcommand record" -l rotate -d 'Write a directory of segments (-o DIR), starting a new one when the current one reaches this size (e.g. 64MiB) or age (e.g. 1h); each segment is a complete recording' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand record" -l keep -d 'With --rotate: delete the oldest segments once all of them take more than SIZE (e.g. 1GiB), or once they are older than DUR (e.g. 7d)' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand record" -l all -d 'Every process this user can see'
complete -c memtrail -n "__fish_memtrail_using_subcommand record" -l children -d 'With --pid: also every descendant, following children that start and exit'
complete -c memtrail -n "__fish_memtrail_using_subcommand record" -l redact-cmdline -d 'Keep only argv[0] of command lines (arguments can hold secrets)'
complete -c memtrail -n "__fish_memtrail_using_subcommand record" -l uncompressed -d 'Write format version 1 (uncompressed, a frame flushed per sample) instead of version 2 (zstd-compressed blocks, one per tick, about 5x smaller), for readers older than version 2'
complete -c memtrail -n "__fish_memtrail_using_subcommand record" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c memtrail -n "__fish_memtrail_using_subcommand record" -s V -l version -d 'Print version'
complete -c memtrail -n "__fish_memtrail_using_subcommand run" -l interval -d 'Time between samples, e.g. 100ms, 1s, 1m, or `auto`: every 50ms at first, thinning out as the targets age [default: 1s; run: auto]' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand run" -l detail -d 'How much to read per sample' -r -f -a "summary\t'status, stat, descriptor and thread counts (cheapest)'
rollup\t'+ smaps_rollup: PSS and the private/shared split'
maps\t'+ per-region smaps (re-read when memory changed, when recording)'
full\t'+ per-region smaps every sample and every descriptor\'s target'"
complete -c memtrail -n "__fish_memtrail_using_subcommand run" -l maps-every -d 'At detail `maps`, re-read every region at least every N samples' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand run" -s o -l output -d 'Write the recording to FILE [default: memtrail-<command>-<pid>.mtr]' -r -F
complete -c memtrail -n "__fish_memtrail_using_subcommand run" -l python-frames -d 'Frames of each --python-tracemalloc site: the allocating line and N-1 of its callers, so a shared helper is told apart by its callers' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand run" -l native-rate -d 'With --native, the mean bytes allocated between two samples: smaller is more precise and costs more' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand run" -l uncompressed -d 'Write format version 1 (uncompressed, a frame flushed per sample) instead of version 2 (zstd-compressed blocks, one per tick, about 5x smaller), for readers older than version 2'
complete -c memtrail -n "__fish_memtrail_using_subcommand run" -l redact-cmdline -d 'Keep only argv[0] of command lines (arguments can hold secrets)'
complete -c memtrail -n "__fish_memtrail_using_subcommand run" -l fail-on-leak -d 'Exit with status 3 if any recorded process leaked, 4 if the command could not be judged (the command\'s own failure status takes precedence)'
complete -c memtrail -n "__fish_memtrail_using_subcommand run" -l python-gc -d 'Python programs count their live objects by type (gc) every --interval'
complete -c memtrail -n "__fish_memtrail_using_subcommand run" -l python-tracemalloc -d 'Python programs report the source lines holding the most memory (tracemalloc) every --interval; slows Python down while it runs'
complete -c memtrail -n "__fish_memtrail_using_subcommand run" -l native -d 'Native programs report sampled allocation stacks (C, C++, Rust; a preloaded library; docs/native.md)'
complete -c memtrail -n "__fish_memtrail_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c memtrail -n "__fish_memtrail_using_subcommand run" -s V -l version -d 'Print version'
complete -c memtrail -n "__fish_memtrail_using_subcommand analyze" -l format -d 'Output format; live JSON prints one document per line per update' -r -f -a "text\t'For people, fitting 80 columns'
json\t'For programs (documented in docs/leak-detection.md and docs/user-guide.md)'"
complete -c memtrail -n "__fish_memtrail_using_subcommand analyze" -l update -d 'While reading live, print updated verdicts at most this often' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand analyze" -l follow -d 'Keep reading FILE as it grows (like `tail -f`) until its end frame or Ctrl-C'
complete -c memtrail -n "__fish_memtrail_using_subcommand analyze" -l all -d 'Detail every process, not only the leaking ones'
complete -c memtrail -n "__fish_memtrail_using_subcommand analyze" -l fail-on-leak -d 'Exit with status 3 if any process leaks, 4 if none could be judged (for CI)'
complete -c memtrail -n "__fish_memtrail_using_subcommand analyze" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c memtrail -n "__fish_memtrail_using_subcommand analyze" -s V -l version -d 'Print version'
complete -c memtrail -n "__fish_memtrail_using_subcommand diff" -l from -d 'With one recording: the earlier moment [default: start]' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand diff" -l to -d 'With one recording: the later moment [default: end]' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand diff" -l min -d 'Only list regions whose size changed by at least this much, e.g. 1MiB' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand diff" -l pid -d 'Only this process' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand diff" -l top -d 'At most N regions per process' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand diff" -l format -d 'Output format' -r -f -a "text\t'For people, fitting 80 columns'
json\t'For programs (documented in docs/leak-detection.md and docs/user-guide.md)'"
complete -c memtrail -n "__fish_memtrail_using_subcommand diff" -l anon -d 'Only list anonymous regions (heap, stacks, anonymous mmaps)'
complete -c memtrail -n "__fish_memtrail_using_subcommand diff" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c memtrail -n "__fish_memtrail_using_subcommand diff" -s V -l version -d 'Print version'
complete -c memtrail -n "__fish_memtrail_using_subcommand report" -l html -d 'Also write a self-contained HTML page with charts to OUT' -r -F
complete -c memtrail -n "__fish_memtrail_using_subcommand report" -l format -d 'The summary printed on standard output' -r -f -a "text\t'A terminal summary with sparklines, fitting 80 columns'
markdown\t'The same content as Markdown tables'"
complete -c memtrail -n "__fish_memtrail_using_subcommand report" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c memtrail -n "__fish_memtrail_using_subcommand report" -s V -l version -d 'Print version'
complete -c memtrail -n "__fish_memtrail_using_subcommand export" -l format -d 'Output format' -r -f -a "csv\t'Comma-separated values with a header line'
ndjson\t'One JSON object per line'
openmetrics\t'OpenMetrics text, for `promtool tsdb create-blocks-from openmetrics`'"
complete -c memtrail -n "__fish_memtrail_using_subcommand export" -s o -l output -d 'Write to FILE instead of standard output' -r -F
complete -c memtrail -n "__fish_memtrail_using_subcommand export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c memtrail -n "__fish_memtrail_using_subcommand export" -s V -l version -d 'Print version'
complete -c memtrail -n "__fish_memtrail_using_subcommand dump" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c memtrail -n "__fish_memtrail_using_subcommand dump" -s V -l version -d 'Print version'
complete -c memtrail -n "__fish_memtrail_using_subcommand serve" -l pid -d 'The process with this pid' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand serve" -l name -d 'Every process whose name (comm) or command line matches REGEX' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand serve" -l listen -d 'Address to listen on, IP:PORT (port 0: any free port, printed at start)' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand serve" -l interval -d 'Time between reads of /proc, e.g. 5s' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand serve" -l judge-every -d 'Judge every series at most this often (judging costs CPU with many processes)' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand serve" -l detail -d 'How much to read per sample (rollup adds PSS; maps and full cost more and add nothing here)' -r -f -a "summary\t'status, stat, descriptor and thread counts (cheapest)'
rollup\t'+ smaps_rollup: PSS and the private/shared split'
maps\t'+ per-region smaps (re-read when memory changed, when recording)'
full\t'+ per-region smaps every sample and every descriptor\'s target'"
complete -c memtrail -n "__fish_memtrail_using_subcommand serve" -l max-processes -d 'Track at most N processes, largest RSS first (bounds the series Prometheus stores)' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand serve" -l cmdline-label -d 'Add a `cmdline` label of at most N characters (command lines can hold secrets)' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand serve" -l all -d 'Every process this user can see'
complete -c memtrail -n "__fish_memtrail_using_subcommand serve" -l children -d 'With --pid: also every descendant, following children that start and exit'
complete -c memtrail -n "__fish_memtrail_using_subcommand serve" -l redact-cmdline -d 'Keep only argv[0] of command lines (arguments can hold secrets)'
complete -c memtrail -n "__fish_memtrail_using_subcommand serve" -l allow-remote -d 'Allow --listen on an address other hosts can reach (no authentication)'
complete -c memtrail -n "__fish_memtrail_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c memtrail -n "__fish_memtrail_using_subcommand serve" -s V -l version -d 'Print version'
complete -c memtrail -n "__fish_memtrail_using_subcommand mark" -l events -d 'The events channel [default: $MEMTRAIL_EVENTS]' -r -F
complete -c memtrail -n "__fish_memtrail_using_subcommand mark" -l pid -d 'The process the marker concerns' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand mark" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c memtrail -n "__fish_memtrail_using_subcommand mark" -s V -l version -d 'Print version'
complete -c memtrail -n "__fish_memtrail_using_subcommand attach" -l interval -d 'Time between samples, e.g. 100ms, 1s, 1m, or `auto`: every 50ms at first, thinning out as the targets age [default: 1s; run: auto]' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand attach" -l detail -d 'How much to read per sample' -r -f -a "summary\t'status, stat, descriptor and thread counts (cheapest)'
rollup\t'+ smaps_rollup: PSS and the private/shared split'
maps\t'+ per-region smaps (re-read when memory changed, when recording)'
full\t'+ per-region smaps every sample and every descriptor\'s target'"
complete -c memtrail -n "__fish_memtrail_using_subcommand attach" -l maps-every -d 'At detail `maps`, re-read every region at least every N samples' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand attach" -l duration -d 'Stop after this long, e.g. 10m [default: until the process exits or Ctrl-C]' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand attach" -s o -l output -d 'Write the recording to FILE [default: memtrail-attach-<pid>.mtr]' -r -F
complete -c memtrail -n "__fish_memtrail_using_subcommand attach" -l python-frames -d 'Frames of each --python-tracemalloc site' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand attach" -l answer-within -d 'Seconds to wait for the hook to answer the request' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand attach" -l uncompressed -d 'Write format version 1 (uncompressed, a frame flushed per sample) instead of version 2 (zstd-compressed blocks, one per tick, about 5x smaller), for readers older than version 2'
complete -c memtrail -n "__fish_memtrail_using_subcommand attach" -l redact-cmdline -d 'Keep only argv[0] of command lines (arguments can hold secrets)'
complete -c memtrail -n "__fish_memtrail_using_subcommand attach" -l python-gc -d 'Count live objects by type (gc) every --interval, with the roots and retention chains of the growing types'
complete -c memtrail -n "__fish_memtrail_using_subcommand attach" -l python-tracemalloc -d 'Report the source lines holding the most memory (tracemalloc) every --interval; traces only allocations made from now on, and slows Python down while attached'
complete -c memtrail -n "__fish_memtrail_using_subcommand attach" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c memtrail -n "__fish_memtrail_using_subcommand attach" -s V -l version -d 'Print version'
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and not __fish_seen_subcommand_from install uninstall status help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and not __fish_seen_subcommand_from install uninstall status help" -s V -l version -d 'Print version'
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and not __fish_seen_subcommand_from install uninstall status help" -f -a "install" -d 'Put the dormant hook into an interpreter\'s site-packages'
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and not __fish_seen_subcommand_from install uninstall status help" -f -a "uninstall" -d 'Take the hook out of an interpreter\'s site-packages'
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and not __fish_seen_subcommand_from install uninstall status help" -f -a "status" -d 'Say whether an interpreter carries the hook, and where'
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and not __fish_seen_subcommand_from install uninstall status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and __fish_seen_subcommand_from install" -l python -d 'The interpreter whose environment gets the hook' -r -F
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and __fish_seen_subcommand_from install" -l user -d 'The user\'s site-packages (site.getusersitepackages()) instead'
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and __fish_seen_subcommand_from install" -s V -l version -d 'Print version'
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and __fish_seen_subcommand_from uninstall" -l python -d 'The interpreter whose environment gets the hook' -r -F
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and __fish_seen_subcommand_from uninstall" -l user -d 'The user\'s site-packages (site.getusersitepackages()) instead'
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and __fish_seen_subcommand_from uninstall" -s h -l help -d 'Print help'
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and __fish_seen_subcommand_from uninstall" -s V -l version -d 'Print version'
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and __fish_seen_subcommand_from status" -l python -d 'The interpreter whose environment gets the hook' -r -F
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and __fish_seen_subcommand_from status" -l user -d 'The user\'s site-packages (site.getusersitepackages()) instead'
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and __fish_seen_subcommand_from help" -f -a "install" -d 'Put the dormant hook into an interpreter\'s site-packages'
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and __fish_seen_subcommand_from help" -f -a "uninstall" -d 'Take the hook out of an interpreter\'s site-packages'
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and __fish_seen_subcommand_from help" -f -a "status" -d 'Say whether an interpreter carries the hook, and where'
complete -c memtrail -n "__fish_memtrail_using_subcommand python-hook; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c memtrail -n "__fish_memtrail_using_subcommand demo" -l duration -d 'How long to record the leaking program' -r
complete -c memtrail -n "__fish_memtrail_using_subcommand demo" -s o -l output -d 'Where to keep the recording [default: memtrail-demo.mtr in a temporary directory]' -r -F
complete -c memtrail -n "__fish_memtrail_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c memtrail -n "__fish_memtrail_using_subcommand demo" -s V -l version -d 'Print version'
complete -c memtrail -n "__fish_memtrail_using_subcommand help; and not __fish_seen_subcommand_from snap record run analyze diff report export dump serve mark attach python-hook demo help" -f -a "snap" -d 'Take one snapshot: a pmap-like table of regions, JSON, or a binary file'
complete -c memtrail -n "__fish_memtrail_using_subcommand help; and not __fish_seen_subcommand_from snap record run analyze diff report export dump serve mark attach python-hook demo help" -f -a "record" -d 'Record samples over time to a binary file or a pipe'
complete -c memtrail -n "__fish_memtrail_using_subcommand help; and not __fish_seen_subcommand_from snap record run analyze diff report export dump serve mark attach python-hook demo help" -f -a "run" -d 'Start a command and record it and all its descendants until it exits'
complete -c memtrail -n "__fish_memtrail_using_subcommand help; and not __fish_seen_subcommand_from snap record run analyze diff report export dump serve mark attach python-hook demo help" -f -a "analyze" -d 'Judge a recording: a leak verdict per process, with the findings behind it'
complete -c memtrail -n "__fish_memtrail_using_subcommand help; and not __fish_seen_subcommand_from snap record run analyze diff report export dump serve mark attach python-hook demo help" -f -a "diff" -d 'Compare two snapshots, or two moments of one recording, region by region'
complete -c memtrail -n "__fish_memtrail_using_subcommand help; and not __fish_seen_subcommand_from snap record run analyze diff report export dump serve mark attach python-hook demo help" -f -a "report" -d 'Show a recording: a terminal or Markdown summary, or an HTML page with charts'
complete -c memtrail -n "__fish_memtrail_using_subcommand help; and not __fish_seen_subcommand_from snap record run analyze diff report export dump serve mark attach python-hook demo help" -f -a "export" -d 'Export every process sample as CSV, NDJSON or OpenMetrics (for Prometheus)'
complete -c memtrail -n "__fish_memtrail_using_subcommand help; and not __fish_seen_subcommand_from snap record run analyze diff report export dump serve mark attach python-hook demo help" -f -a "dump" -d 'Print every frame of a recording as one JSON object per line'
complete -c memtrail -n "__fish_memtrail_using_subcommand help; and not __fish_seen_subcommand_from snap record run analyze diff report export dump serve mark attach python-hook demo help" -f -a "serve" -d 'Serve live memory series and leak verdicts to Prometheus over HTTP'
complete -c memtrail -n "__fish_memtrail_using_subcommand help; and not __fish_seen_subcommand_from snap record run analyze diff report export dump serve mark attach python-hook demo help" -f -a "mark" -d 'Put a labelled marker on the timeline of a running recording'
complete -c memtrail -n "__fish_memtrail_using_subcommand help; and not __fish_seen_subcommand_from snap record run analyze diff report export dump serve mark attach python-hook demo help" -f -a "attach" -d 'Record a running Python process and have its dormant hook report censuses'
complete -c memtrail -n "__fish_memtrail_using_subcommand help; and not __fish_seen_subcommand_from snap record run analyze diff report export dump serve mark attach python-hook demo help" -f -a "python-hook" -d 'Install, remove or check the dormant hook `memtrail attach` talks to'
complete -c memtrail -n "__fish_memtrail_using_subcommand help; and not __fish_seen_subcommand_from snap record run analyze diff report export dump serve mark attach python-hook demo help" -f -a "demo" -d 'Record a real leaking Python program for about 20 seconds and show what memtrail sees'
complete -c memtrail -n "__fish_memtrail_using_subcommand help; and not __fish_seen_subcommand_from snap record run analyze diff report export dump serve mark attach python-hook demo help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c memtrail -n "__fish_memtrail_using_subcommand help; and __fish_seen_subcommand_from python-hook" -f -a "install" -d 'Put the dormant hook into an interpreter\'s site-packages'
complete -c memtrail -n "__fish_memtrail_using_subcommand help; and __fish_seen_subcommand_from python-hook" -f -a "uninstall" -d 'Take the hook out of an interpreter\'s site-packages'
complete -c memtrail -n "__fish_memtrail_using_subcommand help; and __fish_seen_subcommand_from python-hook" -f -a "status" -d 'Say whether an interpreter carries the hook, and where'
