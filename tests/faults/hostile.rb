# frozen_string_literal: true

# Scenario 4 of tests/faults: hostile payloads LPUSHed raw into queue:default
# among good CountJobs, and where each must end (docs/compatibility.md,
# docs/operations.md "Malformed jobs" and "Cases courier adds"):
#
#   dead_raw          not JSON                 → dead set, the raw string unchanged
#   dead_wrapped      JSON, but not an object  → dead set, a Courier::MalformedJob object
#                                                whose one argument is the raw text
#   dead_malformed    no class / class not a non-empty String / args not an
#                     Array / jid or queue not a String → dead set, Courier::MalformedJob
#   dead_refused_413  over the sidecar's --max-body → dead set, Courier::RefusedJob (HTTP 413)
#   dead_refused_400  JSON courier reads but Ruby's parser refuses → Courier::RefusedJob (HTTP 400)
#   retry_name_error  class not defined / not a constant name → RetrySet, NameError
#   retry_not_a_job   a constant that is not a job class → RetrySet, Courier::NotAJobClass
#   dead_name_error   the same with "retry": 0 / -1 → dead set at once (death handlers run)
#   failed_nowhere    the same with "retry": false / null → neither set, death handlers run
#   ran               hostile but valid (odd field types, bytes inside strings) → runs once
#
# Every JSON payload carries "fault_id" (courier keeps unknown keys byte for
# byte), so an entry is found wherever it ends; raw entries are found by
# their bytes. Every raw string is unique: the dead set is a sorted set.
module Faults
  module_function

  QUEUE = "queue:default"
  NON_JOBS = %w[Kernel File Widget JobRun Event Object BasicObject Sidekiq Sidekiq::Client Courier::Sidecar::App
                ::Kernel IO Process ActiveRecord::Base ActiveJob::Base Rails Sidekiq::Worker
                CourierExample::RecordingMiddleware Comparable Math].freeze

  def canary = File.join(WORK, "pwned")

  def injections
    ["system('touch #{canary}')", "`touch #{canary}`", "Kernel.exit!", "File.delete('#{WORK}/state')", "eval('1')",
     "CountJob; exit", "../../etc/passwd", "Object.const_get(:Kernel)", "CountJob\nKernel", "%x(touch #{canary})"]
  end

  def jid = SecureRandom.hex(12)
  def j(value) = JSON.generate(value)

  # An object's JSON text from [key, raw JSON value] pairs (raw bytes kept).
  def obj(*members) = "{" + members.map { |k, v| "#{j(k)}:#{v}" }.join(",") + "}"

  # [category, expected, count, ->(i, id) { raw bytes }]
  def categories(rng)
    fid = ->(id) { ["fault_id", j(id)] }
    count_job = ->(id, *extra) { obj(["class", j("CountJob")], ["args", "[0,\"s4\"]"], ["jid", j(jid)], fid.(id), *extra) }
    undefined = ->(i, id, *extra) { obj(["class", j("Undefined#{i}Job")], ["args", "[1]"], ["jid", j(jid)], fid.(id), *extra) }
    deep = ->(levels) { ("[" * levels) + ("]" * levels) }
    [
      ["random_bytes", "dead_raw", 200, ->(_i, _id) { rng.bytes(1 + rng.rand(300)) }],
      ["empty_or_whitespace", "dead_raw", 5, ->(i, _id) { ["", " ", "\n", "\t\t", " \r\n "][i] }],
      ["invalid_utf8_outside_strings", "dead_raw", 30, ->(_i, id) { count_job.(id).sub(/\}\z/, "\xFF\xFE}".b) }],
      ["invalid_utf8_in_args", "ran", 20, ->(_i, id) { count_job.(id).sub("\"s4\"", "\"\xFF\xFE\xC3(\"".b) }],
      ["invalid_utf8_class", "retry_name_error", 20,
       ->(i, id) { obj(["class", "\"Count\xFF#{i}Job\"".b], ["args", "[]"], ["jid", j(jid)], fid.(id)) }],
      ["nul_raw", "dead_raw", 40,
       ->(i, id) { i < 30 ? count_job.(id).sub("\"s4\"", "\"s\x004\"") : "\x00" + count_job.(id) }],
      ["nul_escaped_class", "retry_name_error", 10, ->(_i, id) { obj(["class", '"CountJob\u0000"'], ["args", "[]"], ["jid", j(jid)], fid.(id)) }],
      ["nul_escaped_args", "ran", 10, ->(_i, id) { count_job.(id).sub("\"s4\"", '"s\u00004"') }],
      ["huge_over_max_body", "dead_refused_413", 10, ->(_i, id) { count_job.(id).sub("\"s4\"", j("x" * 1_200_000)) }],
      ["nested_10000_levels", "dead_raw", 15,
       ->(i, id) { i < 10 ? count_job.(id).sub("\"s4\"", deep.(10_000)) : deep.(10_000) + (" " * i) }],
      ["nested_200_levels", "dead_refused_400", 10, ->(_i, id) { count_job.(id).sub("\"s4\"", deep.(200)) }],
      ["json_not_an_object", "dead_wrapped", 50, lambda do |i, _id|
        case i % 5
        when 0 then "[#{i}]"
        when 1 then i.to_s
        when 2 then j("CountJob #{i}")
        when 3 then %w[null true false][i % 3] + (" " * i)
        else j([{"class" => "CountJob", "args" => [i]}])
        end
      end],
      ["no_class", "dead_malformed", 40,
       ->(i, id) { i.even? ? obj(["args", "[]"], ["jid", j(jid)], fid.(id)) : obj(fid.(id)) }],
      ["class_not_a_string", "dead_malformed", 50,
       ->(i, id) { obj(["class", ["123", "null", "[]", "{}", "true", "1.5", '""'][i % 7]], ["args", "[]"], ["jid", j(jid)], fid.(id)) }],
      ["args_not_an_array", "dead_malformed", 50, lambda do |i, id|
        args = ['"x"', "{}", "1", "null", "true", nil][i % 6]
        obj(["class", j("CountJob")], *(args ? [["args", args]] : []), ["jid", j(jid)], fid.(id))
      end],
      ["jid_not_a_string", "dead_malformed", 30,
       ->(i, id) { obj(["class", j("CountJob")], ["args", "[]"], ["jid", ["123", "null", "[]", "{}", "true"][i % 5]], fid.(id)) }],
      ["queue_not_a_string", "dead_malformed", 20,
       ->(i, id) { obj(["class", j("CountJob")], ["args", "[]"], ["jid", j(jid)], ["queue", ["5", "null", "[]", "{}"][i % 4]], fid.(id)) }],
      ["odd_field_types_on_a_good_job", "ran", 40, lambda do |i, id|
        fields = [%w[retry "yes"], %w[retry {}], %w[retry 1.5], %w[retry -1], ["retry", "1#{"0" * 30}"],
                  %w[retry_count "x"], %w[retry_count -1], ["retry_count", "1#{"0" * 20}"], %w[backtrace "x"],
                  %w[created_at "x"], %w[enqueued_at "x"], %w[retry_queue 5], %w[tags "x"], ['bid', '{"a":1}'],
                  %w[log_level "bogus"], %w[failed_at "x"], %w[at "x"], %w[retry_for "x"], %w[display_class 5],
                  %w[wrapped 5]]
        count_job.(id, fields[i % fields.size])
      end],
      ["undefined_retry_truthy", "retry_name_error", 20,
       ->(i, id) { undefined.(i, id, ["retry", ['"yes"', "1.5", "{}", "true", "5"][i % 5]]) }],
      ["undefined_retry_zero", "dead_name_error", 10, ->(i, id) { undefined.(i, id, ["retry", i.even? ? "0" : "-1"]) }],
      ["undefined_retry_off", "failed_nowhere", 10, ->(i, id) { undefined.(i, id, ["retry", i.even? ? "false" : "null"]) }],
      ["non_job_constants", "retry_not_a_job", 60,
       ->(i, id) { obj(["class", j(NON_JOBS[i % NON_JOBS.size])], ["args", j(["rm -rf /"])], ["jid", j(jid)], fid.(id)) }],
      ["undefined_classes", "retry_name_error", 170, lambda do |i, id|
        name = ["DeployedLater#{i}Job", "Foo#{i}::Bar", "CountJob::Nope#{i}"][i % 3]
        obj(["class", j(name)], ["args", "[]"], ["jid", j(jid)], fid.(id))
      end],
      ["code_in_class", "retry_name_error", 40,
       ->(i, id) { obj(["class", j(injections[i % injections.size])], ["args", "[]"], ["jid", j(jid)], fid.(id)) }],
      ["duplicate_class_keys", nil, 20, lambda do |i, id|
        first, last = i.even? ? %w[CountJob Kernel] : %w[Kernel CountJob]
        obj(["class", j(first)], ["class", j(last)], ["args", "[0,\"s4\"]"], ["jid", j(jid)], fid.(id))
      end],
      ["json_with_comments", "dead_raw", 5, ->(_i, id) { count_job.(id).sub(",", ",/*c*/") }],
      ["utf8_bom", "dead_raw", 5, ->(_i, id) { "\xEF\xBB\xBF".b + count_job.(id) }],
      ["lone_surrogate", "dead_refused_400", 10, ->(_i, id) { count_job.(id).sub("\"s4\"", '"\ud800"') }]
    ]
  end

  def hostile_push(good = "1000")
    rng = Random.new(Integer(ENV.fetch("FAULTS_SEED", "4242")))
    entries = []
    categories(rng).each do |cat, expect, n, gen|
      n.times do |i|
        id = "h#{entries.size.to_s.rjust(4, "0")}"
        raw = gen.call(i, id).b
        exp = expect || (raw.include?('"class":"Kernel","args"') ? "retry_not_a_job" : "ran")
        # Random bytes that happen to be a JSON value (a lone digit) are JSON.
        exp = "dead_wrapped" if cat == "random_bytes" && strict_json_scalar?(raw)
        entries << {"id" => id, "cat" => cat, "expect" => exp, "raw" => [raw].pack("m0"),
                    "jid" => (JSON.parse(raw)["jid"] rescue nil)}
      end
    end
    raws = entries.map { _1["raw"].unpack1("m0") }
    fail!("#{raws.size - raws.uniq.size} hostile payloads are not unique") unless raws.uniq.size == raws.size

    s = Sidekiq::Stats.new
    good_jids = Array.new(Integer(good)) { jid }
    goods = good_jids.map { |g| j("class" => "CountJob", "args" => [0, "s4-good"], "jid" => g, "queue" => "default",
                                  "retry" => true, "created_at" => Time.now.to_f, "enqueued_at" => Time.now.to_f) }
    mixed = (raws + goods).shuffle(random: rng)
    mixed.each_slice(100) { |slice| redis { |c| c.call("LPUSH", QUEUE, *slice) } }
    save("hostile", {"entries" => entries, "good" => good_jids, "processed" => s.processed, "failed" => s.failed})
    puts "ok hostile_push #{entries.size} hostile payloads in #{entries.map { _1["cat"] }.uniq.size} categories " \
         "among #{goods.size} good CountJobs (#{(mixed.sum(&:bytesize) / 1e6).round(1)} MB)"
  end

  # The payload as a Hash; for objects Ruby's parser refuses (nesting over
  # 100, a lone surrogate) the fields courier reads or writes are picked out
  # of the bytes (courier appends its error fields last, as JSON strings).
  def strict_json_scalar?(raw)
    v = JSON.parse(raw, max_nesting: false)
    !v.is_a?(Hash) && !raw.include?("/*") && !raw.include?("//")
  rescue JSON::ParserError, EncodingError
    false
  end

  def parse_object(raw)
    v = JSON.parse(raw)
    v.is_a?(Hash) ? v : nil
  rescue JSON::ParserError, EncodingError
    return nil unless raw.b.start_with?("{")

    fields = %w[fault_id error_class error_message].to_h do |k|
      [k, raw.b.scan(/"#{k}":"((?:[^"\\]|\\.)*)"/n).last&.first&.then { |v| JSON.parse("\"#{v}\"") rescue v }]
    end
    fields["fault_id"] ? fields : nil
  end

  def label_for_failure(prefix, item)
    ec = item["error_class"]
    msg = item["error_message"].to_s
    case ec
    when "Courier::MalformedJob" then "#{prefix}_malformed"
    when "Courier::RefusedJob" then msg.include?("HTTP 413") ? "#{prefix}_refused_413" : msg.include?("HTTP 400") ? "#{prefix}_refused_400" : "#{prefix}_refused_other"
    when "NameError" then "#{prefix}_name_error"
    when "Courier::NotAJobClass" then "#{prefix}_not_a_job"
    else "#{prefix}_other:#{ec}"
    end
  end

  # Where each payload is now, by its original bytes (unchanged: a raw dead
  # entry, or a job still waiting) or by fault_id (courier wrote error
  # fields into it): Sidekiq's sets, the queues, courier's in-progress lists.
  def locate
    by_id = {}
    by_raw = {}
    redis { |c| c.call("ZRANGE", "dead", "0", "-1") }.each do |raw|
      by_raw[raw.b] = "dead_raw"
      item = parse_object(raw)
      by_id[item["fault_id"]] = label_for_failure("dead", item) if item && item["fault_id"] && item["error_class"]
      # JSON that is not an object, kept inside a Courier::MalformedJob object.
      if item && item["class"] == "Courier::MalformedJob" && item["error_message"].to_s.match?(/\Ajob is a JSON \w+, not an object\z/) &&
         item["args"].is_a?(Array) && item["args"].size == 1 && item["args"][0].is_a?(String)
        by_raw[item["args"][0].b] = "dead_wrapped"
      end
    end
    Sidekiq::RetrySet.new.each { |e| (id = e.item["fault_id"]) && by_id[id] = label_for_failure("retry", e.item) }
    (Sidekiq::Queue.all.map { "queue:#{_1.name}" } + wip_lists.keys).each do |key|
      redis { |c| c.call("LRANGE", key, "0", "-1") }.each do |raw|
        by_raw[raw.b] ||= "pending"
        item = parse_object(raw)
        # A retried job on its way back carries its error: still "retried".
        by_id[item["fault_id"]] ||= label_for_failure("retry", item) if item && item["fault_id"] && item["error_class"]
      end
    end
    [by_id, by_raw]
  end

  def outcomes(entries)
    by_id, by_raw = locate
    runs = runs_of(entries.map { _1["jid"].is_a?(String) ? _1["jid"] : "-" })
    deaths = Event.where(kind: "death").pluck(:jid).to_set
    entries.each_with_index.map do |e, k|
      by_raw[e["raw"].unpack1("m0")] || by_id[e["id"]] ||
        (runs[k].positive? ? "ran" : nil) ||
        (deaths.include?(e["jid"]) ? "failed_nowhere" : "nowhere")
    end
  end

  def hostile_verify(bound = "90")
    st = load("hostile")
    entries = st["entries"]
    good = st["good"]
    actual = nil
    eventually("every hostile payload to end somewhere and the good jobs to run", Integer(bound), lambda {
      counts = actual&.tally || {}
      "#{counts} good ran #{runs_of(good).count(&:positive?)}/#{good.size}"
    }) do
      actual = outcomes(entries)
      actual.none? { %w[pending nowhere].include?(_1) } && runs_of(good).none?(&:zero?)
    end
    sleep 1 # death handlers of retry false/0 jobs run after the outcome is written
    actual = outcomes(entries)

    report = Hash.new { |h, k| h[k] = Hash.new(0) }
    wrong = Hash.new { |h, k| h[k] = [] }
    entries.zip(actual).each do |e, got|
      report[e["cat"]][got] += 1
      wrong[[e["cat"], e["expect"], got]] << e unless got == e["expect"]
    end
    expected_totals = entries.map { _1["expect"] }.tally
    actual_totals = actual.tally
    good_runs = runs_of(good)
    dups = good_runs.count { _1 > 1 }
    File.open(File.join(WORK, "hostile.counts"), "w") do |f|
      report.each { |cat, got| f.puts "  #{cat.ljust(31)} #{got.map { |k, v| "#{k}=#{v}" }.join(" ")}" }
    end
    puts "hostile: where #{entries.size} payloads ended (expected #{expected_totals}):"
    report.each { |cat, got| puts "  #{cat.ljust(31)} #{got.map { |k, v| "#{k}=#{v}" }.join(" ")}" }
    fail!("a code-in-class payload ran code: #{canary} exists") if File.exist?(canary)
    check(good_runs.none?(&:zero?), "good jobs lost: #{good_runs.count(&:zero?)}")
    unless wrong.empty?
      lines = wrong.map do |(cat, exp, got), es|
        "#{cat}: #{es.size} ended #{got}, expected #{exp}; e.g. #{es.first["raw"].unpack1("m0")[0, 100].inspect}"
      end
      fail!("hostile payloads that ended somewhere undocumented:\n  " + lines.join("\n  "))
    end
    puts "ok hostile_verify #{actual_totals.sort.map { |k, v| "#{k}=#{v}" }.join(" ")}; good #{good.size} ran " \
         "(#{dups} twice); no code ran (no #{File.basename(canary)} file)"
  end

  # What Sidekiq's own API and Web UI make of the dead and retry sets now:
  # fails when an entry of the dead set cannot be read or a page other than
  # /retries fails (but for Sidekiq's own Busy-page limit below); /retries
  # failures are counted (see below).
  def sidekiq_api_readable
    # The Web UI as the example app's web process mounts it (lib/courier_example/web.rb).
    require File.join(ENV.fetch("FAULTS_APP"), "lib", "courier_example", "web")
    require "rack/mock"
    st = load("hostile")
    by_raw = st["entries"].to_h { [_1["raw"].unpack1("m0"), _1["cat"]] }
    unreadable = Hash.new(0)
    redis { |c| c.call("ZRANGE", "dead", "0", "-1") }.each do |raw|
      Sidekiq::JobRecord.new(raw).display_args
    rescue StandardError
      unreadable[by_raw[raw.b] || "?"] += 1
    end
    web = CourierExample::Web.app
    # No exception middleware in front: an error in a page raises here (a 500 in an app).
    status = lambda do |path|
      Rack::MockRequest.new(web).get("/sidekiq#{path}").status.to_s
    rescue StandardError => e
      "500 (#{e.class})"
    end
    statuses = Hash.new(0)
    { "/morgue" => Sidekiq::DeadSet.new.size, "/retries" => Sidekiq::RetrySet.new.size }.each do |path, size|
      (1..[(size + 24) / 25, 1].max).each { |page| statuses["#{path} #{status.("#{path}?page=#{page}")}"] += 1 }
    end
    # Sidekiq's own limit too: the Busy page maps each listed job's "tags", so
    # it fails while a job whose tags is not an Array (one of the odd-field
    # good jobs) is listed; a finished job stays listed until the next beat,
    # as under Sidekiq. Looked at before and after the page (entries change
    # only at beats).
    odd_tags = lambda do
      Sidekiq::Workers.new.any? { |_, _, w| (t = w["payload"]).is_a?(Hash) && t.key?("tags") && !t["tags"].is_a?(Array) }
    end
    %w[/ /queues /busy /queues/default].each do |p|
      listed_before = p == "/busy" && odd_tags.()
      got = status.(p)
      if p == "/busy" && got == "500 (NoMethodError)" && (listed_before || odd_tags.())
        got = "500 (a listed job's tags is not an Array, as under Sidekiq)"
      end
      statuses["#{p} #{got}"] += 1
    end
    morgue_ok = statuses.all? { |page, n| page.start_with?("/retries") || page.end_with?(" 200") || page.include?("as under Sidekiq") }
    # Sidekiq's own limit, not courier's: a class name that is not UTF-8 breaks
    # the Retries page (ArgumentError in the view); Sidekiq retries such a job
    # too (its const_get raises EncodingError), with the same bytes.
    not_utf8 = Sidekiq::RetrySet.new.count { !_1.klass.to_s.valid_encoding? }
    line = "dead entries Sidekiq::JobRecord cannot read: #{unreadable.values.sum} #{unreadable}; Web UI pages: #{statuses}; " \
           "retry entries whose class is not UTF-8 (break /retries, as under Sidekiq): #{not_utf8}"
    File.write(File.join(WORK, "api.counts"), "#{line}\n")
    check(unreadable.empty? && morgue_ok, line)
    puts "ok sidekiq_api_readable #{line}"
  end

  # Scenario 4b: oversized jobs fetched together. Each is over --max-body
  # (dead, Courier::RefusedJob 413); together they are over the sidecar's
  # --max-batch-body (16 MiB), which refuses the whole batch.
  def huge_batch_push(n = "2", good = "8")
    id = ->(k) { "b#{k}" }
    size = 9_000_000
    huge = Array.new(Integer(n)) do |k|
      j("class" => "CountJob", "args" => [0, "x" * size], "jid" => jid, "fault_id" => id.(k))
    end
    good_jids = Array.new(Integer(good)) { jid }
    goods = good_jids.map { |g| j("class" => "CountJob", "args" => [0, "s4b"], "jid" => g) }
    redis { |c| c.call("LPUSH", QUEUE, *(huge + goods).shuffle) }
    save("huge_batch", {"ids" => Array.new(Integer(n)) { id.(_1) }, "good" => good_jids, "t" => Time.now.to_f})
    puts "ok huge_batch_push #{n} jobs of #{size / 1e6} MB (#{(Integer(n) * size / 1e6).round(1)} MB together, over the " \
         "sidecar's 16 MiB --max-batch-body) and #{good} good jobs, adjacent"
  end

  def huge_batch_verify(bound = "20")
    st = load("huge_batch")
    labels = nil
    eventually("the oversized jobs to reach the dead set and the good ones to run", Integer(bound),
               -> { "dead (413) #{labels&.count("dead_refused_413")}/#{st["ids"].size}, good ran #{runs_of(st["good"]).count(&:positive?)}/#{st["good"].size}" }) do
      by_id, = locate
      labels = st["ids"].map { by_id[_1] }
      labels.all?("dead_refused_413") && runs_of(st["good"]).none?(&:zero?)
    end
    puts "ok huge_batch_verify #{labels.size} dead (RefusedJob 413), #{st["good"].size} good ran; " \
         "settled in #{(Time.now.to_f - st["t"]).round(1)}s"
  end

  # Takes what is left of 4b out of the queue and the in-progress lists (so
  # the next steps start clean), then waits for the good jobs.
  def huge_batch_cleanup
    st = load("huge_batch")
    removed = 0
    (["queue:default"] + wip_lists.keys).each do |key|
      redis { |c| c.call("LRANGE", key, "0", "-1") }.each do |raw|
        removed += redis { |c| c.call("LREM", key, "0", raw) }.to_i if raw.bytesize > 1_000_000 && raw.include?('"fault_id":"b')
      end
    end
    eventually("the good jobs of 4b to run", 30) { runs_of(st["good"]).none?(&:zero?) }
    puts "ok huge_batch_cleanup removed #{removed} oversized payloads still waiting; #{st["good"].size} good jobs ran"
  end

  # Scenario 4c: an app job whose sidekiq_retry_in grows with retry_count
  # (RetryInJob "seconds": 10 × (count + 1)), given a huge retry_count: the
  # sidecar answers retry_in ≈ 1e21, courier converts it with Int(Double).
  def crash_probe_push
    payload = j("class" => "RetryInJob", "args" => ["seconds"], "jid" => jid, "retry_count" => 10**20, "fault_id" => "crash")
    redis { |c| c.call("LPUSH", QUEUE, payload) }
    File.binwrite(File.join(WORK, "crash_probe"), payload)
    puts "ok crash_probe_push #{payload}"
  end

  # Removes the probe wherever it is (so it does not take down the next
  # courier that recovers it); prints where it was.
  def crash_probe_cleanup
    payload = File.binread(File.join(WORK, "crash_probe"))
    where = []
    (["queue:default"] + wip_lists.keys).each do |key|
      n = redis { |c| c.call("LREM", key, "0", payload) }
      where << "#{key} (#{n})" if n.to_i.positive?
    end
    # Read raw: the dead set may hold entries that are not jobs at all (random bytes from scenario 4).
    dead = redis { |c| c.call("ZRANGE", "dead", "0", "-1") }.select { _1.include?('"fault_id":"crash"') }
                                                             .map { parse_object(_1)&.dig("error_class") }
    retry_set = Sidekiq::RetrySet.new.select { _1.item["fault_id"] == "crash" }
    retry_set.each(&:delete)
    puts "ok crash_probe_cleanup removed from #{where.empty? ? "nowhere" : where.join(", ")}; " \
         "dead set: #{dead.empty? ? "none" : dead.join(",")}; retry set: #{retry_set.size}"
  end
end
