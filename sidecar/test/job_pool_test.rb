# frozen_string_literal: true

require_relative "test_helper"

# Courier::Sidecar::JobPool alone: threads are made only when a task finds no
# idle one, never more than its size, and every task still runs.
class JobPoolTest < Minitest::Test
  def setup
    @pool = Courier::Sidecar::JobPool.new(4, logger: Logger.new(File::NULL))
  end

  def teardown
    @pool.stop!
  end

  def test_no_threads_until_a_task_comes_and_one_thread_for_tasks_one_after_another
    assert_equal 0, @pool.threads
    5.times do
      done = Queue.new
      @pool.submit { done << :ran }
      assert_equal :ran, done.pop
      sleep 0.01 # the thread is back waiting before the next task
    end
    assert_equal 1, @pool.threads, "an idle thread takes the next task"
  end

  def test_tasks_at_once_get_threads_up_to_the_size_and_all_run
    gate = Queue.new
    started = Queue.new
    ran = Queue.new
    10.times do |i|
      @pool.submit do
        started << i
        gate.pop
        ran << i
      end
    end
    4.times { started.pop }
    assert_equal 4, @pool.threads
    assert_equal 6, @pool.backlog
    10.times { gate << :go }
    assert_equal (0...10).to_a, Array.new(10) { ran.pop }.sort
    assert_equal 4, @pool.threads, "never more threads than slots"
  end

  def test_a_slot_given_back_starts_a_waiting_task
    4.times { assert @pool.try_take }
    refute @pool.try_take
    done = Queue.new
    @pool.submit { done << :ran }
    assert_equal 0, @pool.threads, "no slot free: the task waits, no thread made for it"
    @pool.give_back
    assert_equal :ran, done.pop
    3.times { @pool.give_back }
  end

  def test_hold_runs_on_the_calling_thread_once_a_slot_is_free
    4.times { assert @pool.try_take }
    ran = Queue.new
    holder = Thread.new { @pool.hold { ran << Thread.current } }
    sleep 0.05
    assert ran.empty?, "every slot taken: the holder waits"
    @pool.give_back
    assert_same holder, ran.pop, "the block runs on the holder's own thread"
    holder.join
    assert @pool.try_take, "the holder gave its slot back"
    4.times { @pool.give_back }
  end

  def test_a_slot_freed_by_a_job_thread_reaches_a_holder
    gate = Queue.new
    started = Queue.new
    4.times do
      @pool.submit do
        started << :on_a_slot
        gate.pop
      end
    end
    4.times { started.pop }
    ran = Queue.new
    holder = Thread.new { @pool.hold { ran << :held } }
    sleep 0.05
    assert ran.empty?, "every slot busy with a task: the holder waits"
    gate << :go
    assert_equal :held, ran.pop
    holder.join
  ensure
    4.times { gate << :go } # no task left blocked for teardown's join
  end
end
