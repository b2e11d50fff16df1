import math


def running_median(values, window=3):
    """Median of each sliding window; `sorted` and `math.floor` are library names, never renamed."""
    result = []
    for end in range(window, len(values) + 1):
        chunk = sorted(values[end - window:end])
        middle = math.floor(len(chunk) / 2)
        result.append(chunk[middle] if len(chunk) % 2 else (chunk[middle - 1] + chunk[middle]) / 2)
    return result


if __name__ == "__main__":
    data = [5, 1, 4, 2, 3]
    print(f"medians of {data}: {running_median(data, window=3)}")
