;; Per-channel element-wise kernels with SIMD, run on the wasm backend's own heap (the memory
;; is imported from it). Tensors are [rows, c] float32 with c a multiple of 4; every pointer is
;; a byte offset into that heap. `npm run wasm` compiles this file into channel-ops-wasm.ts.
(module
  (import "env" "memory" (memory 1))

  ;; out[b][j] = sum over the rows of block b of (x[r][j] - shift[j]), and out[b][c + j] the
  ;; same sum of squares, for blocks of `block` rows (the last one may be shorter).
  (func (export "channel_sums") (param $x i32) (param $rows i32) (param $c i32) (param $shift i32)
    (param $out i32) (param $block i32)
    (local $r i32) (local $end i32) (local $j i32) (local $base i32) (local $row i32) (local $v v128)
    (local $cb i32) (local $p i32) (local $q i32)
    (local.set $cb (i32.shl (local.get $c) (i32.const 2)))
    (local.set $row (local.get $x))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $end (i32.add (local.get $r) (local.get $block)))
        (if (i32.gt_u (local.get $end) (local.get $rows)) (then (local.set $end (local.get $rows))))
        (memory.fill (local.get $out) (i32.const 0) (i32.shl (local.get $cb) (i32.const 1)))
        (loop $rowsLoop
          (local.set $j (i32.const 0))
          (loop $channels
            (local.set $v (f32x4.sub
              (v128.load (i32.add (local.get $row) (local.get $j)))
              (v128.load (i32.add (local.get $shift) (local.get $j)))))
            (local.set $p (i32.add (local.get $out) (local.get $j)))
            (v128.store (local.get $p) (f32x4.add (v128.load (local.get $p)) (local.get $v)))
            (local.set $q (i32.add (local.get $p) (local.get $cb)))
            (v128.store (local.get $q)
              (f32x4.add (v128.load (local.get $q)) (f32x4.mul (local.get $v) (local.get $v))))
            (local.set $j (i32.add (local.get $j) (i32.const 16)))
            (br_if $channels (i32.lt_u (local.get $j) (local.get $cb))))
          (local.set $row (i32.add (local.get $row) (local.get $cb)))
          (local.set $r (i32.add (local.get $r) (i32.const 1)))
          (br_if $rowsLoop (i32.lt_u (local.get $r) (local.get $end))))
        (local.set $out (i32.add (local.get $out) (i32.shl (local.get $cb) (i32.const 1))))
        (br $blocks))))

  ;; out[b][j] = sum over the rows of block b of dy[r][j], and out[b][c + j] the sum of
  ;; dy[r][j] * (x[r][j] - shift[j]).
  (func (export "gradient_sums") (param $dy i32) (param $x i32) (param $rows i32) (param $c i32)
    (param $shift i32) (param $out i32) (param $block i32)
    (local $r i32) (local $end i32) (local $j i32) (local $off i32) (local $g v128)
    (local $cb i32) (local $p i32) (local $q i32)
    (local.set $cb (i32.shl (local.get $c) (i32.const 2)))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $end (i32.add (local.get $r) (local.get $block)))
        (if (i32.gt_u (local.get $end) (local.get $rows)) (then (local.set $end (local.get $rows))))
        (memory.fill (local.get $out) (i32.const 0) (i32.shl (local.get $cb) (i32.const 1)))
        (loop $rowsLoop
          (local.set $j (i32.const 0))
          (loop $channels
            (local.set $g (v128.load (i32.add (local.get $dy) (i32.add (local.get $off) (local.get $j)))))
            (local.set $p (i32.add (local.get $out) (local.get $j)))
            (v128.store (local.get $p) (f32x4.add (v128.load (local.get $p)) (local.get $g)))
            (local.set $q (i32.add (local.get $p) (local.get $cb)))
            (v128.store (local.get $q)
              (f32x4.add (v128.load (local.get $q))
                (f32x4.mul (local.get $g)
                  (f32x4.sub
                    (v128.load (i32.add (local.get $x) (i32.add (local.get $off) (local.get $j))))
                    (v128.load (i32.add (local.get $shift) (local.get $j)))))))
            (local.set $j (i32.add (local.get $j) (i32.const 16)))
            (br_if $channels (i32.lt_u (local.get $j) (local.get $cb))))
          (local.set $off (i32.add (local.get $off) (local.get $cb)))
          (local.set $r (i32.add (local.get $r) (i32.const 1)))
          (br_if $rowsLoop (i32.lt_u (local.get $r) (local.get $end))))
        (local.set $out (i32.add (local.get $out) (i32.shl (local.get $cb) (i32.const 1))))
        (br $blocks))))

  ;; out[r][j] = x[r][j] * a[j] + b[j]
  (func (export "affine") (param $x i32) (param $rows i32) (param $c i32) (param $a i32) (param $b i32)
    (param $out i32)
    (local $end i32) (local $j i32) (local $cb i32)
    (local.set $cb (i32.shl (local.get $c) (i32.const 2)))
    (local.set $end (i32.add (local.get $x) (i32.mul (local.get $rows) (local.get $cb))))
    (block $done
      (loop $rowsLoop
        (br_if $done (i32.ge_u (local.get $x) (local.get $end)))
        (local.set $j (i32.const 0))
        (loop $channels
          (v128.store (i32.add (local.get $out) (local.get $j))
            (f32x4.add
              (f32x4.mul
                (v128.load (i32.add (local.get $x) (local.get $j)))
                (v128.load (i32.add (local.get $a) (local.get $j))))
              (v128.load (i32.add (local.get $b) (local.get $j)))))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br_if $channels (i32.lt_u (local.get $j) (local.get $cb))))
        (local.set $x (i32.add (local.get $x) (local.get $cb)))
        (local.set $out (i32.add (local.get $out) (local.get $cb)))
        (br $rowsLoop))))

  ;; out[r][j] = dy[r][j] * a[j] + x[r][j] * b[j] + k[j]
  (func (export "affine2") (param $dy i32) (param $x i32) (param $rows i32) (param $c i32) (param $a i32)
    (param $b i32) (param $k i32) (param $out i32)
    (local $end i32) (local $j i32) (local $cb i32)
    (local.set $cb (i32.shl (local.get $c) (i32.const 2)))
    (local.set $end (i32.add (local.get $x) (i32.mul (local.get $rows) (local.get $cb))))
    (block $done
      (loop $rowsLoop
        (br_if $done (i32.ge_u (local.get $x) (local.get $end)))
        (local.set $j (i32.const 0))
        (loop $channels
          (v128.store (i32.add (local.get $out) (local.get $j))
            (f32x4.add
              (f32x4.add
                (f32x4.mul
                  (v128.load (i32.add (local.get $dy) (local.get $j)))
                  (v128.load (i32.add (local.get $a) (local.get $j))))
                (f32x4.mul
                  (v128.load (i32.add (local.get $x) (local.get $j)))
                  (v128.load (i32.add (local.get $b) (local.get $j)))))
              (v128.load (i32.add (local.get $k) (local.get $j)))))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br_if $channels (i32.lt_u (local.get $j) (local.get $cb))))
        (local.set $dy (i32.add (local.get $dy) (local.get $cb)))
        (local.set $x (i32.add (local.get $x) (local.get $cb)))
        (local.set $out (i32.add (local.get $out) (local.get $cb)))
        (br $rowsLoop))))

  ;; out[i] = x[i] > 0 ? dy[i] : 0 for n values (any n).
  (func (export "relu_grad") (param $dy i32) (param $x i32) (param $n i32) (param $out i32)
    (local $end i32) (local $vend i32)
    (local.set $end (i32.add (local.get $x) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $vend (i32.add (local.get $x) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $vdone
      (loop $vectors
        (br_if $vdone (i32.ge_u (local.get $x) (local.get $vend)))
        (v128.store (local.get $out)
          (v128.and
            (v128.load (local.get $dy))
            (f32x4.gt (v128.load (local.get $x)) (v128.const f32x4 0 0 0 0))))
        (local.set $dy (i32.add (local.get $dy) (i32.const 16)))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (local.set $out (i32.add (local.get $out) (i32.const 16)))
        (br $vectors)))
    (block $done
      (loop $scalars
        (br_if $done (i32.ge_u (local.get $x) (local.get $end)))
        (f32.store (local.get $out)
          (select (f32.load (local.get $dy)) (f32.const 0) (f32.gt (f32.load (local.get $x)) (f32.const 0))))
        (local.set $dy (i32.add (local.get $dy) (i32.const 4)))
        (local.set $x (i32.add (local.get $x) (i32.const 4)))
        (local.set $out (i32.add (local.get $out) (i32.const 4)))
        (br $scalars))))
;; out[p][b] = x[b][p] for blocks of `bytes` bytes: x of shape [n, hw, C] becomes [hw, n, C]
  ;; (the filter gradient's dy, from [N, H, W, C] to [H, W, N, C]).
  (func (export "swap_leading_axes") (param $x i32) (param $n i32) (param $hw i32) (param $bytes i32) (param $out i32)
    (local $b i32) (local $p i32) (local $src i32) (local $rowBytes i32)
    (local.set $rowBytes (i32.mul (local.get $n) (local.get $bytes)))
    (block $done
      (loop $batches
        (br_if $done (i32.ge_u (local.get $b) (local.get $n)))
        (local.set $p (i32.const 0))
        (local.set $src (i32.add (local.get $x) (i32.mul (i32.mul (local.get $b) (local.get $hw)) (local.get $bytes))))
        (block $rowDone
          (loop $positions
            (br_if $rowDone (i32.ge_u (local.get $p) (local.get $hw)))
            (memory.copy
              (i32.add (local.get $out) (i32.add (i32.mul (local.get $p) (local.get $rowBytes)) (i32.mul (local.get $b) (local.get $bytes))))
              (local.get $src)
              (local.get $bytes))
            (local.set $src (i32.add (local.get $src) (local.get $bytes)))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br $positions)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $batches))))
;; Rows y0 .. y0 + rows - 1 of the im2col matrix of a stride-1 convolution, transposed:
  ;; out[(i * kw + j) * cin + ci][((y - y0) * wo + x) * n + b] = xT[ci][y + i - top][x + j - left][b],
  ;; zero where that falls outside the input. xT is the input as [cin, h, w, n], so each output
  ;; row of one y is a single copy between zero margins.
  (func (export "im2col_rows") (param $xT i32) (param $h i32) (param $w i32) (param $n i32) (param $cin i32)
    (param $kh i32) (param $kw i32) (param $top i32) (param $left i32) (param $wo i32) (param $y0 i32)
    (param $rows i32) (param $out i32)
    (local $i i32) (local $j i32) (local $ci i32) (local $yr i32) (local $yy i32) (local $xs i32) (local $xe i32)
    (local $nb i32) (local $rowBytes i32) (local $dst i32)
    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))
    (local.set $rowBytes (i32.mul (local.get $wo) (local.get $nb)))
    (local.set $dst (local.get $out))
    (loop $taps_i
      (local.set $j (i32.const 0))
      (loop $taps_j
        ;; Output columns x whose input column x + j - left lies in [0, w).
        (local.set $xs (i32.sub (local.get $left) (local.get $j)))
        (if (i32.lt_s (local.get $xs) (i32.const 0)) (then (local.set $xs (i32.const 0))))
        (if (i32.gt_s (local.get $xs) (local.get $wo)) (then (local.set $xs (local.get $wo))))
        (local.set $xe (i32.add (i32.sub (local.get $w) (local.get $j)) (local.get $left)))
        (if (i32.gt_s (local.get $xe) (local.get $wo)) (then (local.set $xe (local.get $wo))))
        (if (i32.lt_s (local.get $xe) (local.get $xs)) (then (local.set $xe (local.get $xs))))
        (local.set $ci (i32.const 0))
        (loop $channels
          (local.set $yr (i32.const 0))
          (loop $outRows
            (local.set $yy (i32.sub (i32.add (i32.add (local.get $y0) (local.get $yr)) (local.get $i)) (local.get $top)))
            (if (i32.or (i32.lt_s (local.get $yy) (i32.const 0)) (i32.ge_s (local.get $yy) (local.get $h)))
              (then (memory.fill (local.get $dst) (i32.const 0) (local.get $rowBytes)))
              (else
                (memory.fill (local.get $dst) (i32.const 0) (i32.mul (local.get $xs) (local.get $nb)))
                (memory.copy
                  (i32.add (local.get $dst) (i32.mul (local.get $xs) (local.get $nb)))
                  (i32.add (local.get $xT)
                    (i32.mul
                      (i32.add
                        (i32.mul (i32.add (i32.mul (local.get $ci) (local.get $h)) (local.get $yy)) (local.get $w))
                        (i32.sub (i32.add (local.get $xs) (local.get $j)) (local.get $left)))
                      (local.get $nb)))
                  (i32.mul (i32.sub (local.get $xe) (local.get $xs)) (local.get $nb)))
                (memory.fill
                  (i32.add (local.get $dst) (i32.mul (local.get $xe) (local.get $nb)))
                  (i32.const 0)
                  (i32.mul (i32.sub (local.get $wo) (local.get $xe)) (local.get $nb)))))
            (local.set $dst (i32.add (local.get $dst) (local.get $rowBytes)))
            (local.set $yr (i32.add (local.get $yr) (i32.const 1)))
            (br_if $outRows (i32.lt_u (local.get $yr) (local.get $rows))))
          (local.set $ci (i32.add (local.get $ci) (i32.const 1)))
          (br_if $channels (i32.lt_u (local.get $ci) (local.get $cin))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br_if $taps_j (i32.lt_u (local.get $j) (local.get $kw))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $taps_i (i32.lt_u (local.get $i) (local.get $kh)))))
;; Gradient of a 2×2, stride-2 max pool on [n, h, w, c] (c a multiple of 4): each window's
  ;; gradient goes to its first maximum in row-major order; every other input position gets 0.
  (func (export "max_pool_grad_2x2") (param $x i32) (param $dy i32) (param $dx i32) (param $n i32) (param $h i32)
    (param $w i32) (param $c i32) (param $ho i32) (param $wo i32)
    (local $cb i32) (local $rowBytes i32) (local $b i32) (local $oy i32) (local $ox i32) (local $j i32)
    (local $off i32) (local $p i32) (local $g v128) (local $v00 v128) (local $v01 v128) (local $v10 v128) (local $v11 v128)
    (local $m00 v128) (local $m01 v128) (local $m10 v128)
    (local.set $cb (i32.shl (local.get $c) (i32.const 2)))
    (local.set $rowBytes (i32.mul (local.get $w) (local.get $cb)))
    ;; Rows or columns beyond the last window get no gradient.
    (if (i32.or (i32.ne (local.get $h) (i32.shl (local.get $ho) (i32.const 1)))
                (i32.ne (local.get $w) (i32.shl (local.get $wo) (i32.const 1))))
      (then (memory.fill (local.get $dx) (i32.const 0)
        (i32.mul (i32.mul (local.get $n) (local.get $h)) (local.get $rowBytes)))))
    (block $done
      (loop $images
        (br_if $done (i32.ge_u (local.get $b) (local.get $n)))
        (local.set $oy (i32.const 0))
        (loop $outRows
          (local.set $ox (i32.const 0))
          (loop $outColumns
            ;; Byte offset of the window's top-left pixel, in x and in dx alike.
            (local.set $off (i32.mul
              (i32.add
                (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (i32.shl (local.get $oy) (i32.const 1))) (local.get $w))
                (i32.shl (local.get $ox) (i32.const 1)))
              (local.get $cb)))
            (local.set $j (i32.const 0))
            (loop $channels
              (local.set $p (i32.add (local.get $off) (local.get $j)))
              (local.set $v00 (v128.load (i32.add (local.get $x) (local.get $p))))
              (local.set $v01 (v128.load (i32.add (local.get $x) (i32.add (local.get $p) (local.get $cb)))))
              (local.set $v10 (v128.load (i32.add (local.get $x) (i32.add (local.get $p) (local.get $rowBytes)))))
              (local.set $v11 (v128.load (i32.add (local.get $x) (i32.add (i32.add (local.get $p) (local.get $rowBytes)) (local.get $cb)))))
              (local.set $g (v128.load (local.get $dy)))
              (local.set $m00 (v128.and (v128.and (f32x4.ge (local.get $v00) (local.get $v01)) (f32x4.ge (local.get $v00) (local.get $v10)))
                (f32x4.ge (local.get $v00) (local.get $v11))))
              (local.set $m01 (v128.andnot (v128.and (f32x4.ge (local.get $v01) (local.get $v10)) (f32x4.ge (local.get $v01) (local.get $v11)))
                (local.get $m00)))
              (local.set $m10 (v128.andnot (v128.andnot (f32x4.ge (local.get $v10) (local.get $v11)) (local.get $m00)) (local.get $m01)))
              (v128.store (i32.add (local.get $dx) (local.get $p)) (v128.and (local.get $g) (local.get $m00)))
              (v128.store (i32.add (local.get $dx) (i32.add (local.get $p) (local.get $cb))) (v128.and (local.get $g) (local.get $m01)))
              (v128.store (i32.add (local.get $dx) (i32.add (local.get $p) (local.get $rowBytes))) (v128.and (local.get $g) (local.get $m10)))
              (v128.store (i32.add (local.get $dx) (i32.add (i32.add (local.get $p) (local.get $rowBytes)) (local.get $cb)))
                (v128.andnot (local.get $g) (v128.or (v128.or (local.get $m00) (local.get $m01)) (local.get $m10))))
              (local.set $dy (i32.add (local.get $dy) (i32.const 16)))
              (local.set $j (i32.add (local.get $j) (i32.const 16)))
              (br_if $channels (i32.lt_u (local.get $j) (local.get $cb))))
            (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
            (br_if $outColumns (i32.lt_u (local.get $ox) (local.get $wo))))
          (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
          (br_if $outRows (i32.lt_u (local.get $oy) (local.get $ho))))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $images))))
;; out[j][m][i] = x[i][m][j] for x of shape [a, middle, d] (perm [2, 1, 0] over those axes), by
  ;; blocks of 16 middle positions, so that each image's part of a block is read contiguously
  ;; and the block's output stays in cache while it fills.
  (func (export "swap_outer_inner") (param $x i32) (param $a i32) (param $middle i32) (param $d i32) (param $out i32)
    (local $m0 i32) (local $m1 i32) (local $i i32) (local $m i32) (local $j i32) (local $src i32) (local $dst i32)
    (local $dstStride i32)
    ;; Bytes between out[j][m][i] and out[j + 1][m][i].
    (local.set $dstStride (i32.shl (i32.mul (local.get $middle) (local.get $a)) (i32.const 2)))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $m0) (local.get $middle)))
        (local.set $m1 (i32.add (local.get $m0) (i32.const 16)))
        (if (i32.gt_u (local.get $m1) (local.get $middle)) (then (local.set $m1 (local.get $middle))))
        (local.set $i (i32.const 0))
        (loop $images
          (local.set $src (i32.add (local.get $x)
            (i32.shl (i32.mul (i32.add (i32.mul (local.get $i) (local.get $middle)) (local.get $m0)) (local.get $d)) (i32.const 2))))
          (local.set $m (local.get $m0))
          (loop $positions
            (local.set $dst (i32.add (local.get $out)
              (i32.shl (i32.add (i32.mul (local.get $m) (local.get $a)) (local.get $i)) (i32.const 2))))
            (local.set $j (i32.const 0))
            (loop $channels
              (f32.store (local.get $dst) (f32.load (local.get $src)))
              (local.set $src (i32.add (local.get $src) (i32.const 4)))
              (local.set $dst (i32.add (local.get $dst) (local.get $dstStride)))
              (local.set $j (i32.add (local.get $j) (i32.const 1)))
              (br_if $channels (i32.lt_u (local.get $j) (local.get $d))))
            (local.set $m (i32.add (local.get $m) (i32.const 1)))
            (br_if $positions (i32.lt_u (local.get $m) (local.get $m1))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $images (i32.lt_u (local.get $i) (local.get $a))))
        (local.set $m0 (local.get $m1))
        (br $blocks))))
)
