"""The service behind `dd-bridge serve`: one warm model, a bounded queue of jobs, variations of the selected clip
rendered ahead, results written into the sample folder.

Modules: app (its life: bind, load, start, signals, stop), door (where the transports hand requests in; the door
thread), service (the facade and the request handlers), state (what the threads share, under one lock), jobqueue
(the queue policy), jobs (one job type per kind), worker (the render loop, a {job type: handler} map, the prefetch
policy), prefetch (the cache of variations rendered ahead), output (files, their metadata and the replies that
announce them; the writer thread), writer (the sample and staging folders), audition (a vary press played and held
back, keep, /dd/play; the audio thread), steering (guide= and recipe= texts read into guides and checked at the
door), stats (counters, recent renders), renderer (the model), requests, settings and config (what may be asked
and configured).

Threads and what each owns:
- the transports' threads (the OSC network thread, rtmidi's callback thread, MIDI's knob worker) only hand requests
  to the door (``Door``, bridge.daemon.door) and answer ping, hello and status themselves; they never wait on a disk or the
  model;
- the door thread ("door") runs ``Service.handle`` on each request in the order they came: it validates, changes
  the shared state under its lock, and never waits on the model or writes a sound (a recipe saved, a small YAML
  file in the config folder, is its one write); the files and folders a request names it looks at, and that recipe
  it writes, through ``files.answered`` (a short-lived ``disk-look`` thread, waited for at most 3 s), so a
  hung network share costs that request one bounded wait; a look left waiting owns nothing and its result is
  dropped;
- the render thread (``Worker._work``) is the only one that calls the model: it runs the queued jobs and the
  prefetch, stages prefetched variations and writes the files of the jobs it rendered; it alone replaces
  ``State.renderer`` and writes ``Job.progress`` (a float that ``status`` reads whole);
- the writer thread ("writer", ``WriterThread`` of ``Output``) names or writes the files of a press answered wholly
  from prefetch and of a keep, and deletes stale staged files; the staged files of variations audition lets go
  (more than ``audition.HEARD`` held) are deleted on the thread that makes it let them go: the render or the writer
  thread (``Audition.hear``, ``restore``), or the stopping thread (``Audition.close``: all it still holds);
- the audio thread ("audio", ``Audition``'s one-worker pool, bridge.daemon.audition) opens the output
  (``Audition.prepare``) and plays each audition press's variations and each /dd/play through its ``Player``; it
  sends the replies that say whether a sound reached the output: a press's ``/dd/ack vary heard N`` (through
  ``Press.started``) or ``/dd/error /dd/vary not heard: ...``, each by its ``Awaiting``'s claim, and /dd/play's
  ``/dd/ack play <path>`` or ``/dd/error /dd/play ...``; it never waits on the model, and reads only a /dd/play's
  file;
- the player's event thread ("playback-events", bridge.playback.player, one per output process) reads the output
  process's events (ready, a sound ended, underruns, the output lost) and ends the sounds they name; it sends no
  reply;
- MIDI's watcher thread ("midi-watch", ``MidiInput`` in bridge.transports.midi; only for a named controller's
  port) opens and closes that port after start, as the controller comes and goes; ``App.stop`` stops it and
  closes the port itself;
- ``Service.stop`` runs on whichever thread stops the service (the main thread of `dd-bridge serve`, on a signal);
  it clears the staging folder through ``files.answered`` (a "disk-look" thread, waited for at most 3 s).

Locks:
- ``State.lock`` (a condition on a re-entrant lock; the render thread waits on it for work) guards every field of
  ``State`` (settings, guides, folder, renderer, selected, selected_loop, select_waiter, prefetch_paused, stopping,
  next_generate_seed, running, the job queue and the prefetch cache with its entries: ready, clip, failed, seeds)
  and the ``waiters``, ``taken`` and ``unsent`` of queued and running jobs, and ``Output._awaiting`` (who waits for
  the write in hand; each ``Awaiting`` is answered once, by whoever claims it under its own small lock). Not under
  it: ``Job.cancelled`` (an Event), ``Job.progress`` (above) and ``State.stopping`` as the cancel hook polls it (it
  only ever becomes True).
- ``Stats`` has a lock of its own for counters, recent renders and the last error (every thread counts).
- ``Audition`` has a lock of its own for what is held back for a keep (the variations heard since the last keep,
  their count, whether a keep took them): the door takes them (keep), the render and writer threads add them
  (``hear``, ``restore``), status counts them; never held while playing or deleting a file.
- ``Output``'s lock is held around every file written into the sample or staging folder, with the write in hand
  (its folder, since when: ``status`` reads it whole); ``stop`` waits for it at most ``output.WRITE_GRACE_S``
  (a write blocked on a hung share is left to the exit) and no file is started after the service has stopped.
"""
