{
  # The addon: every native/*.cc plus the portable kernels. The x86-64 SIMD kernels are static
  # libraries of their own, compiled with their ISA flags; nothing else gets those flags, so the addon
  # loads on any CPU and cpu_features.cc picks the kernels the running CPU supports.
  "target_defaults": {
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL"],
    "cflags!": ["-fno-exceptions", "-O2", "-O0"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2", "-O0"],
    "cflags": ["-O3"],
    "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fno-math-errno", "-fno-trapping-math"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "GCC_OPTIMIZATION_LEVEL": "3"
    }
  },
  "targets": [
    {
      "target_name": "vserve_native",
      "sources": [
        "<!@(node -p \"require('fs').readdirSync('native').filter(f => f.endsWith('.cc')).map(f => 'native/' + f).join(' ')\")",
        "native/isa/portable_kernels.cc",
        "native/isa/portable_superblock_kernels.cc",
        "native/isa/portable_block32_kernels.cc"
      ],
      "conditions": [
        ["target_arch=='x64'", {"dependencies": ["vserve_kernels_avx2", "vserve_kernels_avx512", "vserve_kernels_amx"]}],
        # arm64 has fused multiply-add in its base instruction set, and compilers fuse a * b + c there unless
        # told not to; the x86-64 base build cannot, and the reference backend never does. Off, every
        # expression rounds as written on both, and the fused ones are spelled std::fma.
        ["target_arch=='arm64'", {
          "sources": ["native/isa/neon_kernels.cc", "native/isa/neon_kv_tiles.cc", "native/isa/neon_superblock_kernels.cc", "native/isa/neon_block32_kernels.cc"],
          "cflags_cc": ["-ffp-contract=off"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-ffp-contract=off"]}
        }]
      ]
    }
  ],
  "conditions": [
    ["target_arch=='x64'", {
      "targets": [
        {
          "target_name": "vserve_kernels_avx2",
          "type": "static_library",
          "sources": ["native/isa/avx2_kernels.cc", "native/isa/avx2_kv_tiles.cc", "native/isa/avx2_superblock_kernels.cc", "native/isa/avx2_block32_kernels.cc"],
          "cflags_cc": ["-mavx2", "-mfma", "-mf16c"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-mavx2", "-mfma", "-mf16c"]}
        },
        {
          "target_name": "vserve_kernels_avx512",
          "type": "static_library",
          "sources": ["native/isa/avx512_kernels.cc", "native/isa/avx512_kv_tiles.cc", "native/isa/avx512_superblock_kernels.cc", "native/isa/avx512_block32_kernels.cc"],
          "cflags_cc": ["-Wno-uninitialized", "-Wno-maybe-uninitialized", "-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni"]}
        },
        {
          "target_name": "vserve_kernels_amx",
          "type": "static_library",
          "sources": ["native/isa/amx_packed_kernels.cc", "native/isa/amx_bf16_kernels.cc"],
          "cflags_cc": ["-Wno-uninitialized", "-Wno-maybe-uninitialized", "-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni", "-mavx512bf16", "-mamx-tile", "-mamx-int8", "-mamx-bf16"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni", "-mavx512bf16", "-mamx-tile", "-mamx-int8", "-mamx-bf16"]}
        }
      ]
    }]
  ]
}
