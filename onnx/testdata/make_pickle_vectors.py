import pickle, collections, sys, types, io, os

# A fake torch module, so the pickles look like torch.save's state dicts without needing torch.
torch = types.ModuleType("torch"); sys.modules["torch"] = torch
utils = types.ModuleType("torch._utils"); sys.modules["torch._utils"] = utils; torch._utils = utils
class FloatStorage: pass
FloatStorage.__module__ = "torch"; torch.FloatStorage = FloatStorage
def _rebuild_tensor_v2(*a): pass
_rebuild_tensor_v2.__module__ = "torch._utils"; utils._rebuild_tensor_v2 = _rebuild_tensor_v2

class FakeTensor:
    def __init__(self, key, shape): self.key, self.shape = key, shape
    def __reduce__(self):
        return (_rebuild_tensor_v2, (("storage", FloatStorage, self.key, "cpu", 4), 0, self.shape, (self.shape[1], 1), False, collections.OrderedDict()))

class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, tuple) and len(obj) == 5 and obj[0] == "storage":
            return obj
        return None

def dumps(obj, protocol):
    buf = io.BytesIO(); TorchPickler(buf, protocol=protocol).dump(obj); return buf.getvalue()

state = collections.OrderedDict([("encoder.weight", FakeTensor("0", (2, 2))), ("encoder.bias", FakeTensor("1", (1, 2)))])
class Evil:
    def __init__(self, f, a): self.f, self.a = f, a
    def __reduce__(self): return (self.f, self.a)
import subprocess, builtins
vectors = {
    "STATE_DICT_P2": dumps(state, 2),
    "STATE_DICT_P4": dumps(state, 4),
    "OS_SYSTEM_P2": pickle.dumps(Evil(os.system, ("echo pwned",)), protocol=2),
    "OS_SYSTEM_P4": pickle.dumps(Evil(os.system, ("echo pwned",)), protocol=4),
    "EVAL_P0": pickle.dumps(Evil(builtins.eval, ("1+1",)), protocol=0),
    "EXEC_P3": pickle.dumps(Evil(builtins.exec, ("print(1)",)), protocol=3),
    "GETATTR_P4": pickle.dumps(Evil(builtins.getattr, (1, "real")), protocol=4),
    "SUBPROCESS_P5": pickle.dumps(Evil(subprocess.Popen, (["true"],)), protocol=5),
}
for name, data in vectors.items():
    hexed = ''.join('\\x%02x' % b for b in data)
    print('pub(crate) const ' + name + ': &[u8] = b"' + hexed + '";')
