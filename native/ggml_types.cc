#include "ggml_types.h"

namespace vserve {

const TypeLayout* typeLayout(int type) {
  static const TypeLayout kF32Layout{"F32", 1, 4};
  static const TypeLayout kF16Layout{"F16", 1, 2};
  static const TypeLayout kBF16Layout{"BF16", 1, 2};
  static const TypeLayout kQ8_0Layout{"Q8_0", kQKBlock, kQ8_0Bytes};
  static const TypeLayout kQ4_0Layout{"Q4_0", kQKBlock, kQ4_0Bytes};
  static const TypeLayout kQ4_1Layout{"Q4_1", kQKBlock, kQ4_1Bytes};
  static const TypeLayout kQ5_0Layout{"Q5_0", kQKBlock, kQ5_0Bytes};
  static const TypeLayout kQ5_1Layout{"Q5_1", kQKBlock, kQ5_1Bytes};
  static const TypeLayout kIQ4_NLLayout{"IQ4_NL", kQKBlock, kIQ4_NLBytes};
  static const TypeLayout kQ4_KLayout{"Q4_K", kQKSuper, kQ4_KBytes};
  static const TypeLayout kQ6_KLayout{"Q6_K", kQKSuper, kQ6_KBytes};
  static const TypeLayout kQ2_KLayout{"Q2_K", kQKSuper, kQ2_KBytes};
  static const TypeLayout kQ3_KLayout{"Q3_K", kQKSuper, kQ3_KBytes};
  static const TypeLayout kQ5_KLayout{"Q5_K", kQKSuper, kQ5_KBytes};
  static const TypeLayout kIQ4_XSLayout{"IQ4_XS", kQKSuper, kIQ4_XSBytes};
  switch (type) {
    case kF32: return &kF32Layout;
    case kF16: return &kF16Layout;
    case kBF16: return &kBF16Layout;
    case kQ8_0: return &kQ8_0Layout;
    case kQ4_0: return &kQ4_0Layout;
    case kQ4_1: return &kQ4_1Layout;
    case kQ5_0: return &kQ5_0Layout;
    case kQ5_1: return &kQ5_1Layout;
    case kIQ4_NL: return &kIQ4_NLLayout;
    case kQ4_K: return &kQ4_KLayout;
    case kQ6_K: return &kQ6_KLayout;
    case kQ2_K: return &kQ2_KLayout;
    case kQ3_K: return &kQ3_KLayout;
    case kQ5_K: return &kQ5_KLayout;
    case kIQ4_XS: return &kIQ4_XSLayout;
    default: return nullptr;
  }
}

}  // namespace vserve
