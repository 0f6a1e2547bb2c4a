# frozen_string_literal: true

require "minitest/autorun"
require_relative "../lib/courier/sidecar/signature"

class SignatureTest < Minitest::Test
  Signature = Courier::Sidecar::Signature

  # The worked example of docs/protocol.md.
  def test_documented_example
    body = '{"class":"NoopJob","args":[],"jid":"0123456789abcdef01234567"}'
    header = Signature.sign("s3cret", body, 1_700_000_000)
    assert_equal "t=1700000000,v1=a060f28076fe8fe44216f0dfc0fd4311136517b0a0b1d48b8ba297cc03af6c10", header
    assert Signature.new("s3cret", clock: -> { 1_700_000_100 }).verify!(header, body)
  end

  def test_rotation_accepts_any_v1
    v = Signature.new("new", clock: -> { 100 })
    old = Signature.sign("old", "b", 100).split(",v1=").last
    fresh = Signature.sign("new", "b", 100).split(",v1=").last
    assert v.verify!("t=100,v1=#{old},v1=#{fresh}", "b")
  end

  def test_tolerance_edges
    v = Signature.new("k", clock: -> { 1000 })
    assert v.verify!(Signature.sign("k", "b", 700), "b")
    assert_raises(Signature::Invalid) { v.verify!(Signature.sign("k", "b", 699), "b") }
    assert_raises(Signature::Invalid) { v.verify!(Signature.sign("k", "b", 1301), "b") }
  end

  def test_malformed_headers
    v = Signature.new("k")
    ["", "t=abc,v1=00", "t=1", "v1=#{"0" * 64}", "t=1,v1=xyz"].each do |h|
      assert_raises(Signature::Invalid, h) { v.verify!(h, "b") }
    end
  end

  def test_empty_secret_is_refused
    assert_raises(ArgumentError) { Signature.new("") }
  end
end
