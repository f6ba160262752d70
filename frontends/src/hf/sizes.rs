//! Range checks of the sizes a Hugging Face `config.json` gives, shared by the architectures'
//! `validate` functions so that every bound (and its message) is written once.

use crate::hf::whisper::activation;

/// The largest size any setting may give: a bound checked before anything is allocated.
pub const SIZE_LIMIT: usize = 1 << 30;

/// Every `(name, value)` lies in `1..=SIZE_LIMIT`; the message names the first that does not.
pub fn check_sizes(sizes: &[(&str, usize)]) -> Result<(), String> {
    for &(name, v) in sizes {
        if v == 0 || v > SIZE_LIMIT {
            return Err(format!("`{name}` ({v}) must be in 1..={SIZE_LIMIT}"));
        }
    }
    Ok(())
}

/// The checks of a Transformer with separate encoder and decoder stacks (Whisper, BART): at
/// most 1024 layers per stack, `d_model` a multiple of both head counts, and an activation
/// [`activation`] builds.
pub fn check_encoder_decoder(
    d_model: usize,
    (encoder_layers, decoder_layers): (usize, usize),
    (encoder_heads, decoder_heads): (usize, usize),
    activation_function: &str,
) -> Result<(), String> {
    if encoder_layers > 1024 || decoder_layers > 1024 {
        return Err("more than 1024 layers".into());
    }
    for (name, heads) in [
        ("encoder_attention_heads", encoder_heads),
        ("decoder_attention_heads", decoder_heads),
    ] {
        if !d_model.is_multiple_of(heads) {
            return Err(format!(
                "`d_model` ({d_model}) is not a multiple of `{name}` ({heads})"
            ));
        }
    }
    if activation(activation_function).is_none() {
        return Err(format!(
            "activation_function `{activation_function}` is not supported (gelu, gelu_new, \
             gelu_pytorch_tanh, relu are)"
        ));
    }
    Ok(())
}
