# frozen_string_literal: true

module Courier
  module Sidecar
    # Turns a payload's "class" string into a job class, or says why not.
    #
    # Never a plain constantize: a payload could name Kernel, File or any
    # autoloadable constant. The rules:
    #   * the name must look like a constant path (Foo::Bar);
    #   * each segment is looked up with `const_defined?(name, false)` on the
    #     module reached so far (no lookup through ancestors or Object);
    #   * a segment that is registered for autoload but not loaded yet is only
    #     loaded when its file lives under one of `autoload_roots` (the app's
    #     job directories); anything else is refused without being loaded;
    #   * the result must be a Class that includes Sidekiq::Worker (which is
    #     Sidekiq::Job, and which ActiveJob's JobWrapper includes).
    # In an eager-loaded app (production) every job class is loaded at boot,
    # so no autoload ever happens here.
    #
    # A class that does not resolve is the job's failure, not the request's:
    # Sidekiq's processor raises NameError from const_get (web deployed before
    # the workers), or NoMethodError from `Kernel.new` / `jid=`, and retries
    # the job under its retry policy. Unresolvable carries the exception to
    # report the same way (NameError with Ruby's message, or
    # Courier::NotAJobClass), and nothing of the app runs.
    #
    # Resolutions are cached when classes are not reloaded (cache_classes), so
    # the hot path is one Hash lookup.
    class JobResolver
      # The class cannot run; `error` is what the job's failed attempt reports.
      class Unresolvable < StandardError
        attr_reader :error

        def initialize(error)
          @error = error
          super(error.message)
        end
      end

      CONSTANT_PATH = /\A(?:::)?[A-Z]\w*(?:::[A-Z]\w*)*\z/
      # Sidekiq 8 renamed the ActiveJob wrapper; its payloads name the new
      # class, which does not exist under Sidekiq 6.
      ALIASES = {
        "Sidekiq::ActiveJob::Wrapper" => "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"
      }.freeze

      def initialize(autoload_roots: [], cache: true)
        @autoload_roots = autoload_roots.map { |root| File.join(File.expand_path(root), "") }.freeze
        @cache = cache ? {} : nil
        @lock = Mutex.new
      end

      def resolve(name)
        if @cache
          klass = @cache[name]
          return klass if klass
        end
        klass = lookup(name)
        @lock.synchronize { @cache[name] = klass } if @cache
        klass
      end

      # For the exhausted endpoint: an already-loaded constant, never
      # autoloaded, or nil.
      def loaded_constant(name)
        return nil unless name.is_a?(String) && constant_path?(name)

        name.delete_prefix("::").split("::").reduce(Object) do |mod, segment|
          return nil unless mod.is_a?(Module) && mod.const_defined?(segment, false) && !mod.autoload?(segment)

          mod.const_get(segment, false)
        end
      end

      private

      def lookup(name)
        raise Unresolvable, NameError.new("wrong constant name #{name.scrub}", name) unless constant_path?(name)

        target = walk(ALIASES.fetch(name, name))
        unless target.is_a?(Class) && target.include?(::Sidekiq::Worker)
          raise Unresolvable, NotAJobClass.new("#{name} is not a job class (it does not include Sidekiq::Job/Sidekiq::Worker); it was not run")
        end

        target
      end

      # A string that is not valid UTF-8 names no constant (Regexp#match? would
      # raise ArgumentError on it; Sidekiq's const_get raises EncodingError).
      def constant_path?(name)
        name.valid_encoding? && CONSTANT_PATH.match?(name)
      end

      def walk(name)
        reached = []
        name.delete_prefix("::").split("::").reduce(Object) do |mod, segment|
          reached << segment
          unless mod.is_a?(Module) && mod.const_defined?(segment, false)
            # Ruby's own message for Object.const_get of a missing constant.
            raise Unresolvable, NameError.new("uninitialized constant #{reached.join("::")}", segment.to_sym)
          end
          path = mod.autoload?(segment)
          if path && !autoload_allowed?(path)
            raise Unresolvable, NotAJobClass.new("#{name} is not loaded and #{path} is outside the job directories; it was not run")
          end

          mod.const_get(segment, false)
        end
      end

      def autoload_allowed?(path)
        full = File.expand_path(path)
        @autoload_roots.any? { |root| full.start_with?(root) || File.join(full, "") == root }
      end
    end
  end
end
