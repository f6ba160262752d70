#!/usr/bin/env python3
"""An independent Llama forward pass in NumPy (f64) on a GGUF's dequantized weights, for checking
Kiln's GGUF frontend and the references: prints the max |diff| of prompt 0's last-position logits
against reference.npz. Found that the SmolLM2 reference was computed with rope theta 10000
(transformers 4.57.6's GGUF loader dropped `llama.rope.freq_base` = 100000).

Usage: python3 tools/gguf_numpy_llama.py GGUF REFERENCE_NPZ [THETA]   (needs `pip install gguf numpy`)
SmolLM2-135M sizes are hard-coded below.
"""
import sys
import numpy as np
from gguf import GGUFReader, dequantize
r=GGUFReader(sys.argv[1])
T={t.name:t for t in r.tensors}
def W(n):
    t=T[n]; return dequantize(t.data,t.tensor_type).astype(np.float64)
def rp(w,nh):
    d=w.shape[0]//nh//2
    return w.reshape(nh,d,2,*w.shape[1:]).swapaxes(2,1).reshape(w.shape)
theta=float(sys.argv[3]) if len(sys.argv)>3 else 100000.0
ids=[504, 3575, 282, 4649, 314]
H,KV,D,L,eps=9,3,64,30,9.999999747378752e-06
emb=W('token_embd.weight')
x=emb[ids]
S=len(ids)
inv=1.0/(theta**(np.arange(0,D,2)/D))
ang=np.outer(np.arange(S),inv); ang=np.concatenate([ang,ang],-1)
cos,sin=np.cos(ang),np.sin(ang)
def rot(x):
    h=x.shape[-1]//2; return np.concatenate([-x[...,h:],x[...,:h]],-1)
def rms(x,g): return x/np.sqrt((x*x).mean(-1,keepdims=True)+eps)*g
for l in range(L):
    p=f'blk.{l}.'
    h=rms(x,W(p+'attn_norm.weight'))
    q=h@rp(W(p+'attn_q.weight'),H).T; k=h@rp(W(p+'attn_k.weight'),KV).T; v=h@W(p+'attn_v.weight').T
    q=q.reshape(S,H,D).transpose(1,0,2); k=k.reshape(S,KV,D).transpose(1,0,2); v=v.reshape(S,KV,D).transpose(1,0,2)
    q=q*cos+rot(q)*sin; k=k*cos+rot(k)*sin
    k=np.repeat(k,H//KV,0); v=np.repeat(v,H//KV,0)
    s=q@k.transpose(0,2,1)/np.sqrt(D)+np.triu(np.full((S,S),-np.inf),1)
    s=np.exp(s-s.max(-1,keepdims=True)); s/=s.sum(-1,keepdims=True)
    o=(s@v).transpose(1,0,2).reshape(S,H*D)
    x=x+o@W(p+'attn_output.weight').T
    h=rms(x,W(p+'ffn_norm.weight'))
    g=h@W(p+'ffn_gate.weight').T; u=h@W(p+'ffn_up.weight').T
    x=x+((g/(1+np.exp(-g)))*u)@W(p+'ffn_down.weight').T
x=rms(x,W('output_norm.weight'))
logits=x[-1]@emb.T
z=np.load(sys.argv[2])['prompt0_last_logits']
print('theta',theta,'numpy vs ref',np.abs(logits-z).max())
