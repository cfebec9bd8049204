using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Posteriors;

// The lanes of the step-noise generators (Philox, PhiloxXoshiro): one set of operations at three widths, so that one
// generic body runs at every width and, doing the same IEEE operations in the same order, gives the same bits.

/// <summary>float32 lanes at one width, with the operations the Box–Muller transforms need.</summary>
internal interface ISingleLanes<TSelf, TWords> where TSelf : ISingleLanes<TSelf, TWords>
{
    /// <summary>Lanes per vector.</summary>
    static abstract int Count { get; }
    /// <summary><paramref name="value"/> in every lane.</summary>
    static abstract TSelf Float(float value);
    /// <summary>Integers below 2³¹ to the nearest float (ties to even).</summary>
    static abstract TSelf Convert(TWords integers);
    /// <summary>The floats with these bits.</summary>
    static abstract TSelf FromBits(TWords bits);
    /// <summary>The bits of these floats.</summary>
    static abstract TWords Bits(TSelf x);
    /// <summary>Correctly rounded square roots.</summary>
    static abstract TSelf Sqrt(TSelf x);
    /// <summary>The bits of <paramref name="ifSet"/> where <paramref name="mask"/> is set, of <paramref name="ifClear"/> elsewhere.</summary>
    static abstract TWords Select(TWords mask, TSelf ifSet, TSelf ifClear);
    /// <summary>Writes the lanes to <paramref name="normals"/> from <paramref name="at"/>.</summary>
    static abstract void Store(TSelf x, Span<float> normals, int at);
    static abstract TSelf operator +(TSelf a, TSelf b);
    static abstract TSelf operator -(TSelf a, TSelf b);
    static abstract TSelf operator *(TSelf a, TSelf b);
    /// <summary>a·b + c rounded once.</summary>
    static abstract TSelf FusedMultiplyAdd(TSelf a, TSelf b, TSelf c);
}

/// <summary>uint32 lanes at one width.</summary>
internal interface IWordLanes<TSelf> where TSelf : IWordLanes<TSelf>
{
    /// <summary><paramref name="value"/> in every lane.</summary>
    static abstract TSelf Word(uint value);
    /// <summary>The lanes from <paramref name="words"/>[<paramref name="at"/>] on.</summary>
    static abstract TSelf Load(ReadOnlySpan<uint> words, int at);
    /// <summary>All ones in the lanes where <paramref name="a"/> = <paramref name="b"/>, zero elsewhere.</summary>
    static abstract TSelf Equal(TSelf a, TSelf b);
    static abstract TSelf operator +(TSelf a, TSelf b);
    static abstract TSelf operator &(TSelf a, TSelf b);
    static abstract TSelf operator |(TSelf a, TSelf b);
    static abstract TSelf operator ^(TSelf a, TSelf b);
    static abstract TSelf operator <<(TSelf a, int shift);
    static abstract TSelf operator >>>(TSelf a, int shift);
    static abstract TSelf operator -(TSelf a, TSelf b);
    /// <summary>The lanes rotated left by <paramref name="shift"/> bits.</summary>
    static abstract TSelf RotateLeft(TSelf a, [ConstantExpected] byte shift);
    /// <summary>The lanes as signed integers shifted right by <paramref name="shift"/>, copying the sign bit.</summary>
    static abstract TSelf ShiftRightArithmetic(TSelf a, int shift);
    /// <summary>Writes the lanes to <paramref name="words"/> from <paramref name="at"/>.</summary>
    static abstract void Store(TSelf a, Span<uint> words, int at);
}

internal readonly record struct Single512(Vector512<float> V) : ISingleLanes<Single512, Words512>
{
    public static int Count => Vector512<float>.Count;
    public static Single512 Float(float value) => new(Vector512.Create(value));
    public static Single512 Convert(Words512 integers) => new(Vector512.ConvertToSingle(integers.V.AsInt32()));
    public static Single512 FromBits(Words512 bits) => new(bits.V.AsSingle());
    public static Words512 Bits(Single512 x) => new(x.V.AsUInt32());
    public static Single512 Sqrt(Single512 x) => new(Vector512.Sqrt(x.V));
    public static Words512 Select(Words512 mask, Single512 ifSet, Single512 ifClear) => new(Vector512.ConditionalSelect(mask.V.AsSingle(), ifSet.V, ifClear.V).AsUInt32());
    public static void Store(Single512 x, Span<float> normals, int at) => x.V.CopyTo(normals[at..]);
    public static Single512 operator +(Single512 a, Single512 b) => new(a.V + b.V);
    public static Single512 operator -(Single512 a, Single512 b) => new(a.V - b.V);
    public static Single512 operator *(Single512 a, Single512 b) => new(a.V * b.V);
    public static Single512 FusedMultiplyAdd(Single512 a, Single512 b, Single512 c) => new(Vector512.FusedMultiplyAdd(a.V, b.V, c.V));
}

internal readonly record struct Words512(Vector512<uint> V) : IWordLanes<Words512>
{
    public static Words512 Word(uint value) => new(Vector512.Create(value));
    public static Words512 Load(ReadOnlySpan<uint> words, int at) => new(Vector512.LoadUnsafe(ref MemoryMarshal.GetReference(words), (nuint)at));
    public static Words512 Equal(Words512 a, Words512 b) => new(Vector512.Equals(a.V, b.V));
    public static Words512 operator +(Words512 a, Words512 b) => new(a.V + b.V);
    public static Words512 operator &(Words512 a, Words512 b) => new(a.V & b.V);
    public static Words512 operator |(Words512 a, Words512 b) => new(a.V | b.V);
    public static Words512 operator ^(Words512 a, Words512 b) => new(a.V ^ b.V);
    public static Words512 operator <<(Words512 a, int shift) => new(a.V << shift);
    public static Words512 operator >>>(Words512 a, int shift) => new(a.V >>> shift);
    public static Words512 operator -(Words512 a, Words512 b) => new(a.V - b.V);
    public static Words512 RotateLeft(Words512 a, [ConstantExpected] byte shift) => new(Avx512F.RotateLeft(a.V, (byte)shift));
    public static Words512 ShiftRightArithmetic(Words512 a, int shift) => new((a.V.AsInt32() >> shift).AsUInt32());
    public static void Store(Words512 a, Span<uint> words, int at) => a.V.CopyTo(words[at..]);
}

internal readonly record struct Single256(Vector256<float> V) : ISingleLanes<Single256, Words256>
{
    public static int Count => Vector256<float>.Count;
    public static Single256 Float(float value) => new(Vector256.Create(value));
    public static Single256 Convert(Words256 integers) => new(Vector256.ConvertToSingle(integers.V.AsInt32()));
    public static Single256 FromBits(Words256 bits) => new(bits.V.AsSingle());
    public static Words256 Bits(Single256 x) => new(x.V.AsUInt32());
    public static Single256 Sqrt(Single256 x) => new(Vector256.Sqrt(x.V));
    public static Words256 Select(Words256 mask, Single256 ifSet, Single256 ifClear) => new(Vector256.ConditionalSelect(mask.V.AsSingle(), ifSet.V, ifClear.V).AsUInt32());
    public static void Store(Single256 x, Span<float> normals, int at) => x.V.CopyTo(normals[at..]);
    public static Single256 operator +(Single256 a, Single256 b) => new(a.V + b.V);
    public static Single256 operator -(Single256 a, Single256 b) => new(a.V - b.V);
    public static Single256 operator *(Single256 a, Single256 b) => new(a.V * b.V);
    public static Single256 FusedMultiplyAdd(Single256 a, Single256 b, Single256 c) => new(Vector256.FusedMultiplyAdd(a.V, b.V, c.V));
}

internal readonly record struct Words256(Vector256<uint> V) : IWordLanes<Words256>
{
    public static Words256 Word(uint value) => new(Vector256.Create(value));
    public static Words256 Load(ReadOnlySpan<uint> words, int at) => new(Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(words), (nuint)at));
    public static Words256 Equal(Words256 a, Words256 b) => new(Vector256.Equals(a.V, b.V));
    public static Words256 operator +(Words256 a, Words256 b) => new(a.V + b.V);
    public static Words256 operator &(Words256 a, Words256 b) => new(a.V & b.V);
    public static Words256 operator |(Words256 a, Words256 b) => new(a.V | b.V);
    public static Words256 operator ^(Words256 a, Words256 b) => new(a.V ^ b.V);
    public static Words256 operator <<(Words256 a, int shift) => new(a.V << shift);
    public static Words256 operator >>>(Words256 a, int shift) => new(a.V >>> shift);
    public static Words256 operator -(Words256 a, Words256 b) => new(a.V - b.V);
    public static Words256 RotateLeft(Words256 a, [ConstantExpected] byte shift) => new((a.V << shift) | (a.V >>> (32 - shift)));
    public static Words256 ShiftRightArithmetic(Words256 a, int shift) => new((a.V.AsInt32() >> shift).AsUInt32());
    public static void Store(Words256 a, Span<uint> words, int at) => a.V.CopyTo(words[at..]);
}

/// <summary>One lane: the path of machines without SIMD.</summary>
internal readonly record struct Single1(float V) : ISingleLanes<Single1, Words1>
{
    public static int Count => 1;
    public static Single1 Float(float value) => new(value);
    public static Single1 Convert(Words1 integers) => new((int)integers.V);
    public static Single1 FromBits(Words1 bits) => new(BitConverter.UInt32BitsToSingle(bits.V));
    public static Words1 Bits(Single1 x) => new(BitConverter.SingleToUInt32Bits(x.V));
    public static Single1 Sqrt(Single1 x) => new(MathF.Sqrt(x.V));
    public static Words1 Select(Words1 mask, Single1 ifSet, Single1 ifClear) => (mask & Bits(ifSet)) | (new Words1(~mask.V) & Bits(ifClear));
    public static void Store(Single1 x, Span<float> normals, int at) => normals[at] = x.V;
    public static Single1 operator +(Single1 a, Single1 b) => new(a.V + b.V);
    public static Single1 operator -(Single1 a, Single1 b) => new(a.V - b.V);
    public static Single1 operator *(Single1 a, Single1 b) => new(a.V * b.V);
    public static Single1 FusedMultiplyAdd(Single1 a, Single1 b, Single1 c) => new(MathF.FusedMultiplyAdd(a.V, b.V, c.V));
}

internal readonly record struct Words1(uint V) : IWordLanes<Words1>
{
    public static Words1 Word(uint value) => new(value);
    public static Words1 Load(ReadOnlySpan<uint> words, int at) => new(words[at]);
    public static Words1 Equal(Words1 a, Words1 b) => new(a.V == b.V ? uint.MaxValue : 0);
    public static Words1 operator +(Words1 a, Words1 b) => new(a.V + b.V);
    public static Words1 operator &(Words1 a, Words1 b) => new(a.V & b.V);
    public static Words1 operator |(Words1 a, Words1 b) => new(a.V | b.V);
    public static Words1 operator ^(Words1 a, Words1 b) => new(a.V ^ b.V);
    public static Words1 operator <<(Words1 a, int shift) => new(a.V << shift);
    public static Words1 operator >>>(Words1 a, int shift) => new(a.V >>> shift);
    public static Words1 operator -(Words1 a, Words1 b) => new(a.V - b.V);
    public static Words1 RotateLeft(Words1 a, [ConstantExpected] byte shift) => new(BitOperations.RotateLeft(a.V, shift));
    public static Words1 ShiftRightArithmetic(Words1 a, int shift) => new((uint)((int)a.V >> shift));
    public static void Store(Words1 a, Span<uint> words, int at) => words[at] = a.V;
}
