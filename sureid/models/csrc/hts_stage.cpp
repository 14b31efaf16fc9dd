// One stage of HTS inference as one call: the decision module (LayerNorm, Linear, GELU, the
// local/global split, Linear+GELU twice, Linear, LogSoftmax; sureid/models/decision.py with
// mask=None) and the top-k gather of sureid/models/hts.py's select_topk_tokens, for float32
// on the CPU. Built on first use by sureid/models/fused_decision.py.
//
// Tokens run in the vector lanes: every layer is W (M x K) times a K x np block holding np (a
// multiple of kLanes) tokens, so each output is its bias plus a sequential sum over K
// (deterministic, independent of the thread count) and kRows x kLanes accumulators stay in
// registers. GELU's erf is Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7, as ATen's vectorised
// erf) with a Cephes exp: scores agree with the eager module to a few 1e-6, not bit for bit, so a
// near-tie between two tokens can go the other way (docs/hts.md, "Fused decision").
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <vector>

namespace {

constexpr int64_t kLanes = 16;
constexpr int64_t kRows = 8;

// GCC's __builtin_shuffle on one zmm register; elsewhere the transposition copies one float
// at a time (AVX2 would emulate the shuffles no faster)
#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
#define SUREID_BLOCK_TRANSPOSE 1
#else
#define SUREID_BLOCK_TRANSPOSE 0
#endif

// kLanes floats as one GCC/Clang vector: zmm with AVX-512, two ymm with AVX2, SSE otherwise
typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));

inline Vec load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store(float* p, const Vec& v) { std::memcpy(p, &v, sizeof v); }

// out (R x np) = bias + W (R x K, row stride ldw) @ in (K x np); np % kLanes == 0. Each output
// is bias plus a sequential sum over K; the R accumulators of kLanes tokens stay in registers.
template <int64_t R>
inline void tile(const float* w, int64_t ldw, int64_t k, const float* in, int64_t np,
                 const float* bias, float* out) {
  for (int64_t j = 0; j < np; j += kLanes) {
    Vec acc[R];
#pragma GCC unroll 16
    for (int64_t r = 0; r < R; ++r) acc[r] = Vec{} + (bias ? bias[r] : 0.f);
    for (int64_t c = 0; c < k; ++c) {
      const Vec u = load(in + c * np + j);
#pragma GCC unroll 16
      for (int64_t r = 0; r < R; ++r) acc[r] += w[r * ldw + c] * u;
    }
#pragma GCC unroll 16
    for (int64_t r = 0; r < R; ++r) store(out + r * np + j, acc[r]);
  }
}

// out (M x np) = bias + W (M x K) @ in (K x np), kRows rows at a time
void linear_t(const float* w, int64_t ldw, int64_t m, int64_t k, const float* in, int64_t np,
              const float* bias, float* out) {
  int64_t r = 0;
  for (; r + kRows <= m; r += kRows)
    tile<kRows>(w + r * ldw, ldw, k, in, np, bias ? bias + r : nullptr, out + r * np);
  for (; r < m; ++r)
    tile<1>(w + r * ldw, ldw, k, in, np, bias ? bias + r : nullptr, out + r * np);
}

// r[0..15] (16 rows of 16 floats) transposed in registers: four rounds that swap the
// off-diagonal S x S blocks of each 2S x 2S block (S = 8, 4, 2, 1)
#if SUREID_BLOCK_TRANSPOSE
typedef int32_t Idx __attribute__((vector_size(kLanes * sizeof(int32_t))));

template <int S>
inline void swap_blocks(Vec* r) {
  // lane e of the pair's first row takes the second row's lane e - S where e & S; lane e of
  // the second row takes the first row's lane e + S where not (lanes 16.. name the second)
#define SUREID_LO(e) (((e) & S) ? 16 + (e) - S : (e))
#define SUREID_HI(e) (((e) & S) ? 16 + (e) : (e) + S)
  constexpr Idx lo = {SUREID_LO(0),  SUREID_LO(1),  SUREID_LO(2),  SUREID_LO(3),
                      SUREID_LO(4),  SUREID_LO(5),  SUREID_LO(6),  SUREID_LO(7),
                      SUREID_LO(8),  SUREID_LO(9),  SUREID_LO(10), SUREID_LO(11),
                      SUREID_LO(12), SUREID_LO(13), SUREID_LO(14), SUREID_LO(15)};
  constexpr Idx hi = {SUREID_HI(0),  SUREID_HI(1),  SUREID_HI(2),  SUREID_HI(3),
                      SUREID_HI(4),  SUREID_HI(5),  SUREID_HI(6),  SUREID_HI(7),
                      SUREID_HI(8),  SUREID_HI(9),  SUREID_HI(10), SUREID_HI(11),
                      SUREID_HI(12), SUREID_HI(13), SUREID_HI(14), SUREID_HI(15)};
#undef SUREID_LO
#undef SUREID_HI
  for (int a = 0; a < 16; ++a)
    if (!(a & S)) {
      const Vec x = r[a], y = r[a + S];
      r[a] = __builtin_shuffle(x, y, lo);
      r[a + S] = __builtin_shuffle(x, y, hi);
    }
}

#endif

// u (C x np): u[c][j] = x[j][c] for j < n (rows of C floats), 0 for n <= j < np. With
// AVX-512 and GCC, 16 x 16 blocks are transposed in registers (3x faster than the strided
// copy at C = 64, 6x at C = 384); otherwise, and for the last C % 16 channels, one at a time.
void to_lanes(const float* x, int64_t n, int64_t C, int64_t np, float* u) {
  int64_t blocked = 0;  // channels already transposed in 16 x 16 blocks
#if SUREID_BLOCK_TRANSPOSE
  blocked = C / kLanes * kLanes;
  for (int64_t j0 = 0; j0 < np; j0 += kLanes)
    for (int64_t c0 = 0; c0 < blocked; c0 += kLanes) {
      Vec r[kLanes];
      for (int64_t l = 0; l < kLanes; ++l)
        r[l] = j0 + l < n ? load(x + (j0 + l) * C + c0) : Vec{};
      swap_blocks<8>(r);
      swap_blocks<4>(r);
      swap_blocks<2>(r);
      swap_blocks<1>(r);
      for (int64_t l = 0; l < kLanes; ++l) store(u + (c0 + l) * np + j0, r[l]);
    }
#endif
  for (int64_t c = blocked; c < C; ++c)
    for (int64_t j = 0; j < np; ++j) u[c * np + j] = j < n ? x[j * C + c] : 0.f;
}

// exp(x) for x <= 0 (Cephes expf, ~1 ulp), in branch-free arithmetic the compiler vectorises
inline float exp_nonpositive(float x) {
  x = x < -87.0f ? -87.0f : x;  // exp(-87) is the last normal float's order; erf is 1 there
  const float y = x * 1.44269504088896341f + 0.5f;
  const int32_t ti = static_cast<int32_t>(y);  // truncation; floor below
  const int32_t ni = ti - static_cast<int32_t>(y < static_cast<float>(ti));
  const float n = static_cast<float>(ni);
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  const int32_t bits = (ni + 127) << 23;
  return e * __builtin_bit_cast(float, bits);
}

// a <- a/2 (1 + erf(a / sqrt 2)), nn.GELU's exact form
void gelu(float* a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float x = a[i];
    const float z = std::fabs(x) * 0.70710678118654752f;
    const float t = 1.0f / (1.0f + 0.3275911f * z);
    const float poly =
        ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t +
         0.254829592f) * t;
    const float erf_abs = 1.0f - poly * exp_nonpositive(-z * z);
    a[i] = 0.5f * x * (1.0f + std::copysign(erf_abs, x));
  }
}

}  // namespace

// x (B, p + n, C) -> [kept (B, p + k, C) (empty unless gather), idx (B, k) int64 ascending]
// and, with scores, the keep log-probability of each patch token (B, n) third. The decision
// module's parameters come first, so that Python binds them once per forward.
std::vector<at::Tensor> hts_stage(
    const at::Tensor& ln_w, const at::Tensor& ln_b, double eps,
    const at::Tensor& w1_in, const at::Tensor& b1, const at::Tensor& w2_in,
    const at::Tensor& b2, const at::Tensor& w3_in, const at::Tensor& b3,
    const at::Tensor& w4_in, const at::Tensor& b4,
    const at::Tensor& x_in, int64_t k, int64_t p, bool gather, bool scores) {
  TORCH_CHECK(x_in.dim() == 3 && x_in.scalar_type() == at::kFloat && x_in.device().is_cpu(),
              "hts_stage: x must be a float32 CPU tensor (B, T, C)");
  const at::Tensor x = x_in.contiguous();
  const at::Tensor w1 = w1_in.contiguous(), w2 = w2_in.contiguous();
  const at::Tensor w3 = w3_in.contiguous(), w4 = w4_in.contiguous();
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), n = T - p;
  TORCH_CHECK(p >= 0 && n >= 1 && k >= 1 && k <= n, "hts_stage: need 1 <= k <= T - p");
  const int64_t H = w1.size(0), half = H / 2, H2 = w2.size(0), H3 = w3.size(0);
  TORCH_CHECK(w1.size(1) == C && w2.size(1) == H && w3.size(1) == H2 && w4.size(0) == 2 &&
                  w4.size(1) == H3 && H % 2 == 0,
              "hts_stage: decision weights do not chain");
  for (const at::Tensor* t : {&ln_w, &ln_b, &w1, &b1, &w2, &b2, &w3, &b3, &w4, &b4})
    TORCH_CHECK(t->scalar_type() == at::kFloat && t->device().is_cpu() && t->is_contiguous(),
                "hts_stage: decision parameters must be contiguous float32 CPU tensors");
  TORCH_CHECK(ln_w.numel() == C && ln_b.numel() == C && b1.numel() == H && b2.numel() == H2 &&
                  b3.numel() == H3 && b4.numel() == 2,
              "hts_stage: decision parameter sizes do not match");
  const int64_t np = (n + kLanes - 1) / kLanes * kLanes;
  at::Tensor out = at::empty({gather ? B : 0, p + k, C}, x.options());
  at::Tensor idx = at::empty({B, k}, x.options().dtype(at::kLong));
  at::Tensor score_out = at::empty({scores ? B : 0, n}, x.options());
  const float* px = x.data_ptr<float>();
  float* po = out.data_ptr<float>();
  int64_t* pi = idx.data_ptr<int64_t>();
  float* ps = score_out.data_ptr<float>();
  const float *g = ln_w.data_ptr<float>(), *be = ln_b.data_ptr<float>();
  const float *pw1 = w1.data_ptr<float>(), *pb1 = b1.data_ptr<float>();
  const float *pw2 = w2.data_ptr<float>(), *pb2 = b2.data_ptr<float>();
  const float *pw3 = w3.data_ptr<float>(), *pb3 = b3.data_ptr<float>();
  const float *pw4 = w4.data_ptr<float>(), *pb4 = b4.data_ptr<float>();
  const float epsf = static_cast<float>(eps);
  at::parallel_for(0, B, 1, [&](int64_t first, int64_t end) {
    // one scratch block for the layers' outputs (tokens in lanes) and the image's scores
    std::vector<float> scratch((C + H + H2 + H3 + 2) * np + half + H2 + n);
    float* const u = scratch.data();
    float* const h = u + C * np;
    float* const y2 = h + H * np;
    float* const y3 = y2 + H2 * np;
    float* const z = y3 + H3 * np;
    float* const glob = z + 2 * np;
    float* const gy = glob + half;
    float* const own_score = gy + H2;
    std::vector<int64_t> order(n);
    for (int64_t b = first; b < end; ++b) {
      const float* xb = px + b * T * C;
      float* const score = scores ? ps + b * n : own_score;
      // LayerNorm with the tokens in lanes; padding lanes are zero and never read back
      to_lanes(xb + p * C, n, C, np, u);
      for (int64_t j0 = 0; j0 < np; j0 += kLanes) {  // kLanes tokens, sums in registers
        float* uj = u + j0;
        Vec sum = Vec{};
        for (int64_t c = 0; c < C; ++c) sum += load(uj + c * np);
        const Vec mean = sum / static_cast<float>(C);
        Vec var = Vec{};
        for (int64_t c = 0; c < C; ++c) {
          const Vec d = load(uj + c * np) - mean;
          var += d * d;
        }
        Vec rstd;
        for (int64_t l = 0; l < kLanes; ++l)
          rstd[l] = 1.0f / std::sqrt(var[l] / static_cast<float>(C) + epsf);
        for (int64_t c = 0; c < C; ++c)
          store(uj + c * np, (load(uj + c * np) - mean) * rstd * g[c] + be[c]);
      }
      linear_t(pw1, C, H, C, u, np, pb1, h);
      gelu(h, H * np);
      // the global half: its mean over the n real tokens, through its columns of the next
      // layer once per image (the same for every token)
      for (int64_t i = 0; i < half; ++i) {
        const float* hi = h + (half + i) * np;
        float s = 0.f;
        for (int64_t j = 0; j < n; ++j) s += hi[j];
        glob[i] = s / static_cast<float>(n);
      }
      for (int64_t o = 0; o < H2; ++o) {
        float s = pb2[o];
        for (int64_t i = 0; i < half; ++i) s += pw2[o * H + half + i] * glob[i];
        gy[o] = s;
      }
      linear_t(pw2, H, H2, half, h, np, gy, y2);
      gelu(y2, H2 * np);
      linear_t(pw3, H2, H3, H2, y2, np, pb3, y3);
      gelu(y3, H3 * np);
      linear_t(pw4, H3, 2, H3, y3, np, pb4, z);
      for (int64_t j = 0; j < n; ++j) {  // log_softmax(z)[1], in ATen's order of operations
        const float z0 = z[j], z1 = z[np + j], mx = std::max(z0, z1);
        score[j] = (z1 - mx) - std::log(std::exp(z0 - mx) + std::exp(z1 - mx));
      }
      // the k best: higher score first, then the lower index; NaN ranks above every number (as
      // in torch.topk) so the ordering stays strict; kept in increasing index order
      std::iota(order.begin(), order.end(), int64_t{0});
      auto before = [score](int64_t a, int64_t c) {
        const float sa = score[a], sc = score[c];
        const bool na = std::isnan(sa), nc = std::isnan(sc);
        if (na || nc) return na && (!nc || a < c);
        return sa > sc || (sa == sc && a < c);
      };
      std::nth_element(order.begin(), order.begin() + (k - 1), order.end(), before);
      std::sort(order.begin(), order.begin() + k);
      for (int64_t j = 0; j < k; ++j) pi[b * k + j] = order[j];
      if (gather) {
        float* ob = po + b * (p + k) * C;
        std::memcpy(ob, xb, p * C * sizeof(float));
        for (int64_t j = 0; j < k; ++j)
          std::memcpy(ob + (p + j) * C, xb + (p + order[j]) * C, C * sizeof(float));
      }
    }
  });
  if (scores) return {out, idx, score_out};
  return {out, idx};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  namespace py = pybind11;
  m.def("hts_stage", &hts_stage, "one fused HTS inference stage (decision, top-k, gather)",
        py::arg("ln_w"), py::arg("ln_b"), py::arg("eps"), py::arg("w1"), py::arg("b1"),
        py::arg("w2"), py::arg("b2"), py::arg("w3"), py::arg("b3"), py::arg("w4"),
        py::arg("b4"), py::arg("x"), py::arg("k"), py::arg("p"), py::arg("gather") = true,
        py::arg("scores") = false);
}
