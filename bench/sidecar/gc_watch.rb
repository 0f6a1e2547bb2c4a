# frozen_string_literal: true

# Experiment aid, not part of any figure: once a second, one line of the
# process's GC counters (and the stalls it saw) appended to
# $GC_WATCH_DIR/<program>-<pid>.log, so a run shows how often minor and
# major GCs come, why the majors come (GC.latest_gc_info(:major_by)), how
# the limits that trigger them move, and how long the process stood still.
#
#   BENCH_SIDECAR_ENV="RUBYOPT=-r$PWD/bench/sidecar/gc_watch.rb GC_WATCH_DIR=/tmp/gcw" \
#     BENCH_SIDES=courier BENCH_PARTS=paced bench/sidecar/compare.sh
#
# A stall is a 5 ms sleep of this thread that took over 25 ms: the GVL was
# held that long (a GC, or a thread that does not release it). The watcher
# costs a wake-up every 5 ms; leave it out of measured runs.
if (dir = ENV["GC_WATCH_DIR"])
  Thread.new do
    Thread.current.name = "gc-watch"
    path = File.join(dir, "#{File.basename($PROGRAM_NAME)[/[\w-]+/] || "ruby"}-#{Process.pid}.log")
    last = tick = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    stalls = []
    loop do
      sleep 0.005
      now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      stalls << ((now - last - 0.005) * 1000).round if now - last > 0.025
      last = now
      next if now - tick < 1

      tick = now
      s = GC.stat
      hwm = File.read("/proc/self/status")[/VmHWM:\s+(\d+)/, 1]
      File.open(path, "a") do |f|
        f.puts "t=#{now.round(2)} allocated=#{s[:total_allocated_objects]} minor=#{s[:minor_gc_count]} major=#{s[:major_gc_count]} " \
               "gc_ms=#{s[:time]} live=#{s[:heap_live_slots]} slots=#{s[:heap_available_slots]} old=#{s[:old_objects]}/#{s[:old_objects_limit]} " \
               "remembered=#{s[:remembered_wb_unprotected_objects]}/#{s[:remembered_wb_unprotected_objects_limit]} " \
               "oldmalloc=#{s[:oldmalloc_increase_bytes]}/#{s[:oldmalloc_increase_bytes_limit]} " \
               "major_by=#{GC.latest_gc_info(:major_by).inspect} threads=#{Thread.list.size} hwm_kb=#{hwm} stalls_ms=#{stalls.join(",")}"
      end
      stalls = []
    end
  end
end
