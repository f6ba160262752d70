"""Golden values for kiln-pipelines' resampler (`Audio::to_rate`, tests/whisper_features.rs):
torchaudio.functional.resample with its defaults (sinc_interp_hann, lowpass_filter_width 6,
rolloff 0.99), here as a float64 torch port of its kernel and polyphase conv1d (torchaudio is
not needed), on a fixed three-tone signal.

    python pipelines/tests/data/make_resample_golden.py > pipelines/tests/data/resample_golden.txt
"""
import math

import numpy as np
import torch

CASES = [(44100, 16000, 882), (8000, 16000, 160), (22050, 16000, 441)]


def signal(rate, n):
    i = np.arange(n, dtype=np.float64)
    x = (0.5 * np.sin(2 * np.pi * 440 * i / rate) + 0.3 * np.sin(2 * np.pi * 3000 * i / rate)
         + 0.1 * np.sin(2 * np.pi * 3900 * i / rate))
    return x.astype(np.float32)


def resample(x, orig, new, lowpass_filter_width=6, rolloff=0.99):
    g = math.gcd(orig, new)
    orig, new = orig // g, new // g
    base = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / base)
    idx = torch.arange(-width, width + orig, dtype=torch.float64)[None, None] / orig
    t = torch.arange(0, -new, -1, dtype=torch.float64)[:, None, None] / new + idx
    t *= base
    t = t.clamp(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t *= math.pi
    kernels = torch.where(t == 0, torch.tensor(1.0, dtype=torch.float64), t.sin() / t)
    kernels *= window * (base / orig)
    w = torch.from_numpy(x.astype(np.float64))[None]
    length = w.shape[-1]
    w = torch.nn.functional.pad(w, (width, width + orig))
    y = torch.nn.functional.conv1d(w[:, None], kernels, stride=orig)
    y = y.transpose(1, 2).reshape(1, -1)
    return y[0, : math.ceil(new * length / orig)].numpy()


print("# torchaudio.functional.resample defaults, float64 port (make_resample_golden.py)")
for orig, new, n in CASES:
    y = resample(signal(orig, n), orig, new)
    print(f"{orig} {new} {n} {len(y)}")
    print(" ".join(f"{v:.9e}" for v in y))
