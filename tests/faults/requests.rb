# frozen_string_literal: true

require "stringio"

# Scenario 6 of tests/faults: requests straight to the running sidecar (Puma,
# 2 workers) that must be refused with nothing run. Each request names a
# fresh jid of a CountJob (Redis counter) or a RecordJob (a DB row), so "ran"
# is visible in the app's Redis and database afterwards.
module Faults
  module_function

  def post_raw(port, path, body, signature: nil, chunked: false)
    http = Net::HTTP.new("127.0.0.1", Integer(port))
    http.read_timeout = 30
    req = Net::HTTP::Post.new(path, "Content-Type" => "application/json")
    req["Courier-Signature"] = signature if signature
    if chunked
      req["Transfer-Encoding"] = "chunked"
      req.body_stream = StringIO.new(body)
    else
      req.body = body
    end
    res = http.request(req)
    [res.code.to_i, (JSON.parse(res.body)["reason"] rescue res.body.to_s[0, 120])]
  rescue Errno::EPIPE, Errno::ECONNRESET => e
    [0, "connection closed while sending (#{e.class})"]
  end

  def signatures(port)
    secret = ENV.fetch("COURIER_SECRET")
    sign = ->(body, t: Time.now.to_i, key: secret) { "t=#{t},v1=#{OpenSSL::HMAC.hexdigest("SHA256", key, "#{t}.#{body}")}" }
    jids = []
    count_job = lambda do |extra = nil|
      jids << jid
      j("class" => "CountJob", "args" => [0, extra || "s6"], "jid" => jids.last)
    end
    record_job = -> { jids << jid; j("class" => "RecordJob", "args" => ["s6-#{jids.last}"], "jid" => jids.last) }
    big = -> { count_job.("x" * 2_000_000) }
    batch = ->(n) { j("jobs" => Array.new(n) { {"payload" => count_job.("x" * 200_000), "queue" => "default"} }) }

    captured = record_job.()
    captured_at = Time.now.to_i - 301
    cases = [
      ["unsigned", 401, "/v1/jobs", count_job.(), nil],
      ["unsigned RecordJob", 401, "/v1/jobs", record_job.(), nil],
      ["wrong secret", 401, "/v1/jobs", (b = count_job.()), sign.(b, key: "not-the-secret")],
      ["signature over another body", 401, "/v1/jobs", count_job.(), sign.(count_job.())],
      ["signature over the body with one byte changed", 401, "/v1/jobs", (b = record_job.()).sub("s6-", "s7-"), sign.(b)],
      ["garbage signature header", 401, "/v1/jobs", count_job.(), "t=abc,v1=zz"],
      ["stale: a request signed 301 s ago, replayed", 401, "/v1/jobs", captured, sign.(captured, t: captured_at)],
      ["stale: signed 600 s ago", 401, "/v1/jobs", (b = count_job.()), sign.(b, t: Time.now.to_i - 600)],
      ["timestamp 400 s in the future", 401, "/v1/jobs", (b = count_job.()), sign.(b, t: Time.now.to_i + 400)],
      ["oversized (2 MB) with Content-Length, signed", 413, "/v1/jobs", (b = big.()), sign.(b)],
      ["oversized (2 MB) chunked, no Content-Length, signed", 413, "/v1/jobs", (b = big.()), sign.(b), true],
      ["oversized (2 MB) unsigned", 413, "/v1/jobs", big.(), nil],
      ["oversized batch (85 jobs, 17 MB), signed", 413, "/v1/jobs/batch", (b = batch.(85)), sign.(b)],
      ["batch unsigned", 401, "/v1/jobs/batch", batch.(2), nil],
      ["exhausted unsigned", 401, "/v1/jobs/exhausted", count_job.(), nil],
      ["cancel unsigned", 401, "/v1/jobs/cancel", j("jid" => jid, "reason" => "cancel"), nil]
    ]
    results = cases.map do |name, want, path, body, signature, chunked|
      code, reason = post_raw(port, path, body, signature: signature, chunked: chunked)
      [name, want, code, reason]
    end
    sleep 1 # anything that did run has written by now
    ran = runs_of(jids).count(&:positive?)
    rows = JobRun.where(jid: jids).count
    events = Event.where(jid: jids).count
    results.each { |name, want, code, reason| puts "  #{code} (want #{want}) #{name}: #{reason.to_s[0, 90]}" }
    bad = results.reject { |_, want, code, _| code == want }
    check(bad.empty?, "refusals answered otherwise: #{bad.map { "#{_1[0]} → #{_1[2]}" }.join("; ")}")
    check(ran.zero? && rows.zero? && events.zero?,
          "refused requests ran something: #{ran} CountJob runs, #{rows} JobRun rows, #{events} hook events")

    # The documented limit (docs/protocol.md, "Replay"): protocol v1 has no
    # nonce, so the same signed request is accepted again within 300 s.
    body = count_job.()
    signature = sign.(body)
    codes = Array.new(2) { post_raw(port, "/v1/jobs", body, signature: signature).first }
    replayed = runs_of([jids.last]).first
    check(codes == [200, 200] && replayed == 2, "replay within the window: #{codes}, ran #{replayed} times")
    health = Net::HTTP.get_response(URI("http://127.0.0.1:#{port}/v1/health")).code
    check(health == "200", "sidecar health after the refusals: #{health}")
    line = "#{results.size} refused (#{results.map { _1[2] }.tally.map { |k, v| "#{k}×#{v}" }.join(", ")}), " \
           "nothing ran (0 CountJob runs, 0 JobRun rows, 0 events); an identical signed request replayed " \
           "within the window ran #{replayed} times (no nonce in v1)"
    File.write(File.join(WORK, "signatures.counts"), "#{line}\n")
    puts "ok signatures #{line}"
  end
end
