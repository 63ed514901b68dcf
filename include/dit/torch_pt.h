#pragma once
// Reading PyTorch torch.save files (.pt / .pth / .ckpt) without running any of their code.
// torch.save (PyTorch 1.6 and later) writes a zip archive: <archive>/data.pkl, a pickle of the
// saved object whose tensors refer to storages by key, and <archive>/data/<key>, each storage's
// raw little-endian bytes. We read the zip with libtorch's own reader and the pickle with a small
// restricted interpreter of our own: it knows dicts, lists, tuples, sets, numbers, strings and
// bytes, builds tensors from torch._utils._rebuild_tensor_v2 / _v3 and _rebuild_parameter, and
// keeps an object of any other class (argparse.Namespace, numpy arrays, os.system ...) as an
// opaque value that is never constructed or called. The older non-zip format is refused.
#include <dit/safetensors.h>  // TensorMap, Metadata

#include <string>

namespace dit {

// True when the file starts with a zip local-file header ("PK\x03\x04"): the format torch.save
// writes since PyTorch 1.6. Throws dit::Error if the file cannot be opened.
bool is_torch_zip_file(const std::string& path);

// Reads a torch.save file and returns every tensor in it, keyed by its path through nested dicts,
// lists and tuples joined with '.': a state dict gives its own keys, {"ema": sd} gives
// "ema.<key>", int keys print as decimal, list and tuple items by index; a file holding one bare
// tensor gives the key "". Tensors are CPU tensors whatever device they were saved from, with
// the saved dtype, shape, strides and storage offset; tensors that shared a storage in the file
// are views of one buffer here too (as torch.load returns them), so a saved view may be
// non-contiguous. The buffers are the archive records read once, not copied again.
//
// Everything else is skipped. When `skipped` is given it receives, under the same kind of key,
// what was left out: numbers as decimal text ("steps" -> "7"), strings as themselves, None /
// True / False, and "<...>" descriptions for the rest ("args" -> "<argparse.Namespace>",
// "<bytes, 2>", "<set, 3 items>").
//
// Throws dit::Error naming the file (and, where it applies, the tensor's key, the field, or the
// offset in data.pkl) for: a file that is not a torch.save zip archive, a legacy-format file, an
// unsupported or malformed pickle opcode, a tensor whose size / stride / offset leave its
// storage, a storage record that is missing or whose size is not numel * element size, a BOOL
// storage byte other than 0/1, a tensor of an unsupported dtype or rebuild function (quantized,
// sparse), two tensors with the same key path, or structures deeper than 100 levels.
TensorMap load_torch_pt(const std::string& path, Metadata* skipped = nullptr);

}  // namespace dit
