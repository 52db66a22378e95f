"""Playback: hear variations through an audio output (sounddevice/PortAudio), without loading the model.

``Player`` (player.py) is what the CLI and the service use; the stream runs in its own process (output.py) and
mixes the sound of the last press with the fade-out of the one it cut (mixer.py).
"""
